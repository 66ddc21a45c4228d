//! The API reference in docs/api.md, generated from the package schema
//! (`cargo run -q -p securepipeline-e2e --bin gen-api-docs > docs/api.md`;
//! a test fails when the committed file is stale), and the check that every
//! property in the schema is described.

use serde_json::Value as Json;

const TYPE_PREFIX: &str = "#/types/";

/// A type's short name: `securepipeline:index:Build` is `Build`.
fn short_name(token: &str) -> &str {
    token.rsplit(':').next().unwrap_or(token)
}

/// The anchor a type's heading gets (GitHub and Hugo both lower-case it).
fn anchor(token: &str) -> String {
    short_name(token).to_lowercase()
}

/// A property's type as a reader sees it, with links to object and enum types.
fn type_text(property: &Json) -> String {
    if let Some(reference) = property["$ref"].as_str() {
        let token = reference.strip_prefix(TYPE_PREFIX).unwrap_or(reference);
        return format!("[{}](#{})", short_name(token), anchor(token));
    }
    match property["type"].as_str() {
        Some("array") => format!("list of {}", type_text(&property["items"])),
        Some("object") if property.get("additionalProperties").is_some() => {
            format!("map of {}", type_text(&property["additionalProperties"]))
        }
        Some(other) => other.to_string(),
        None => "any".to_string(),
    }
}

/// A description on one line of a list item: the schema's hard line breaks
/// joined, paragraphs kept apart.
fn flow(description: &str) -> String {
    description
        .split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn properties(out: &mut String, properties: &Json, required: &Json) {
    let required: Vec<&str> = required
        .as_array()
        .map(|names| names.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = properties.as_object() else {
        return;
    };
    for (name, property) in properties {
        let requirement = if required.contains(&name.as_str()) {
            ", required"
        } else {
            ""
        };
        let secret = if property["secret"].as_bool() == Some(true) {
            ", secret"
        } else {
            ""
        };
        out.push_str(&format!(
            "- **`{name}`** ({}{requirement}{secret}): {}\n",
            type_text(property),
            flow(property["description"].as_str().unwrap_or(""))
        ));
    }
    out.push('\n');
}

/// The reference for every resource, the provider's configuration and
/// every type of the schema, in the schema's order.
pub fn api_reference(schema: &Json) -> String {
    let mut out = String::new();
    out.push_str("---\ntitle: API reference\n---\n\n");
    out.push_str(&format!(
        "<!-- Generated from schema/schema.json by `cargo run -q -p securepipeline-e2e --bin gen-api-docs > docs/api.md`; do not edit. -->\n\n# {} API reference\n\n{}\n\n",
        schema["displayName"].as_str().unwrap_or("SecurePipeline"),
        flow(schema["description"].as_str().unwrap_or(""))
    ));
    if let Some(resources) = schema["resources"].as_object() {
        for (token, resource) in resources {
            out.push_str(&format!(
                "## {}\n\n`{token}`{}\n\n{}\n\n### Inputs\n\n",
                short_name(token),
                if resource["isComponent"].as_bool() == Some(true) {
                    " (component resource)"
                } else {
                    ""
                },
                flow(resource["description"].as_str().unwrap_or(""))
            ));
            properties(
                &mut out,
                &resource["inputProperties"],
                &resource["requiredInputs"],
            );
            out.push_str("### Outputs\n\n");
            properties(&mut out, &resource["properties"], &resource["required"]);
        }
    }
    out.push_str(&format!(
        "## Provider configuration\n\n{} Each is also an input of an explicit `Provider` resource.\n\n",
        flow(schema["provider"]["description"].as_str().unwrap_or(""))
    ));
    properties(&mut out, &schema["config"]["variables"], &Json::Null);
    out.push_str("## Types\n\n");
    if let Some(types) = schema["types"].as_object() {
        for (token, spec) in types {
            out.push_str(&format!(
                "### {}\n\n{}\n\n",
                short_name(token),
                flow(spec["description"].as_str().unwrap_or(""))
            ));
            if let Some(values) = spec["enum"].as_array() {
                out.push_str("One of:\n\n");
                for value in values {
                    let text = value["value"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value["value"].to_string());
                    let meaning = value["description"]
                        .as_str()
                        .map(|d| format!(": {}", flow(d)))
                        .unwrap_or_default();
                    out.push_str(&format!("- `{text}`{meaning}\n"));
                }
                out.push('\n');
            } else {
                properties(&mut out, &spec["properties"], &spec["required"]);
            }
        }
    }
    format!("{}\n", out.trim_end())
}

/// Every property, resource, type and config key of the schema without a
/// description, by its path in the schema.
pub fn undescribed(schema: &Json) -> Vec<String> {
    let mut missing = Vec::new();
    let mut check = |path: String, properties: &Json| {
        if let Some(properties) = properties.as_object() {
            for (name, property) in properties {
                if !described(property) {
                    missing.push(format!("{path}.{name}"));
                }
            }
        }
    };
    check("config.variables".into(), &schema["config"]["variables"]);
    check(
        "provider.inputProperties".into(),
        &schema["provider"]["inputProperties"],
    );
    if let Some(resources) = schema["resources"].as_object() {
        for (token, resource) in resources {
            check(
                format!("resources.{token}.inputProperties"),
                &resource["inputProperties"],
            );
            check(
                format!("resources.{token}.properties"),
                &resource["properties"],
            );
        }
    }
    if let Some(types) = schema["types"].as_object() {
        for (token, spec) in types {
            check(format!("types.{token}.properties"), &spec["properties"]);
        }
    }
    let mut owners: Vec<(String, &Json)> = vec![("provider".into(), &schema["provider"])];
    if let Some(resources) = schema["resources"].as_object() {
        owners.extend(resources.iter().map(|(t, r)| (format!("resources.{t}"), r)));
    }
    if let Some(types) = schema["types"].as_object() {
        owners.extend(types.iter().map(|(t, s)| (format!("types.{t}"), s)));
    }
    for (path, owner) in owners {
        if !described(owner) {
            missing.push(path);
        }
    }
    missing
}

fn described(spec: &Json) -> bool {
    spec["description"]
        .as_str()
        .is_some_and(|text| !text.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_link_to_their_section() {
        assert_eq!(
            type_text(&json!({"$ref": "#/types/securepipeline:index:Build"})),
            "[Build](#build)"
        );
        assert_eq!(
            type_text(&json!({"type": "array", "items": {"type": "string"}})),
            "list of string"
        );
        assert_eq!(
            type_text(&json!({"type": "object", "additionalProperties": {"type": "string"}})),
            "map of string"
        );
    }

    #[test]
    fn a_missing_or_blank_description_is_named_by_its_path() {
        let schema = json!({
            "provider": {"description": "p", "inputProperties": {"region": {"type": "string"}}},
            "config": {"variables": {"region": {"type": "string", "description": "r"}}},
            "resources": {"x:index:R": {"description": " ", "inputProperties": {"a": {"type": "string", "description": "a"}}}},
            "types": {"x:index:T": {"description": "t", "properties": {"b": {"type": "string", "description": ""}}}}
        });
        assert_eq!(
            undescribed(&schema),
            vec![
                "provider.inputProperties.region".to_string(),
                "types.x:index:T.properties.b".to_string(),
                "resources.x:index:R".to_string(),
            ]
        );
    }

    #[test]
    fn reference_lists_required_and_secret_properties() {
        let schema = json!({
            "displayName": "D", "description": "about",
            "provider": {"description": "config."},
            "config": {"variables": {}},
            "resources": {"x:index:R": {"description": "a\nresource", "isComponent": true,
                "inputProperties": {"token": {"type": "string", "secret": true, "description": "t"}},
                "requiredInputs": ["token"], "properties": {}}},
            "types": {"x:index:E": {"type": "string", "description": "e", "enum": [{"value": "A"}]}}
        });
        let text = api_reference(&schema);
        assert!(
            text.contains("- **`token`** (string, required, secret): t\n"),
            "{text}"
        );
        assert!(text.contains("a resource"), "{text}");
        assert!(text.contains("- `A`\n"), "{text}");
    }
}
