//! The docs in the registry's layout: the API reference is the schema's,
//! and the schema describes everything it declares.

use securepipeline_e2e::docs::{api_reference, undescribed};
use securepipeline_e2e::repo_root;

fn schema() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("schema/schema.json")).expect("schema");
    serde_json::from_str(&text).expect("schema is JSON")
}

#[test]
fn every_schema_property_is_described() {
    let missing = undescribed(&schema());
    assert!(missing.is_empty(), "without a description: {missing:#?}");
}

#[test]
fn api_reference_is_generated_from_the_committed_schema() {
    let committed = std::fs::read_to_string(repo_root().join("docs/api.md")).expect("docs/api.md");
    assert!(
        committed == api_reference(&schema()),
        "docs/api.md is stale: cargo run -q -p securepipeline-e2e --bin gen-api-docs > docs/api.md"
    );
}
