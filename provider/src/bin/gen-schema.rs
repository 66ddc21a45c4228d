//! Prints the package schema; `schema/schema.json` is its output.
fn main() {
    let schema = securepipeline::schema::package_schema();
    match serde_json::to_string_pretty(&schema) {
        Ok(text) => println!("{text}"),
        Err(err) => {
            eprintln!("could not serialize the schema: {err}");
            std::process::exit(1);
        }
    }
}
