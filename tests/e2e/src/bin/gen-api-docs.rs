//! Prints the API reference generated from schema/schema.json; docs/api.md
//! is its output.
use securepipeline_e2e::{docs::api_reference, repo_root};

fn main() {
    let path = repo_root().join("schema/schema.json");
    let schema = std::fs::read_to_string(&path)
        .map_err(|err| err.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|err| err.to_string()));
    match schema {
        Ok(schema) => print!("{}", api_reference(&schema)),
        Err(err) => {
            eprintln!("{}: {err}", path.display());
            std::process::exit(1);
        }
    }
}
