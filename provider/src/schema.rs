//! The Pulumi package schema, generated from the Rust types users' inputs
//! are parsed into. `schema/schema.json` is this output; a test fails when
//! the committed file and the types disagree.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value as Json};

use crate::aws::ProviderConfig;
use crate::component::args::{SecurePipelineArgs, SecurePipelineOutputs};

pub const PACKAGE: &str = "securepipeline";
pub const COMPONENT_TYPE: &str = "securepipeline:index:SecurePipeline";
/// Where the engine downloads the plugin a program needs: each release's
/// assets, `pulumi-resource-securepipeline-v<version>-<os>-<arch>.tar.gz`,
/// under `v<version>`. The engine substitutes `${VERSION}` and appends the
/// tarball's name (an `https` plugin source), so `make release`'s dist/ is
/// exactly what a release uploads.
pub const PLUGIN_DOWNLOAD_URL: &str =
    "https://github.com/securepipeline/pulumi-securepipeline/releases/download/v${VERSION}";
/// The Pulumi SDK version generated SDKs depend on, pinned project-wide.
pub const PULUMI_SDK_VERSION: &str = "3.248.0";

/// The schema as committed (no version: SDK generation stamps it).
pub fn package_schema() -> Json {
    let mut types = Map::new();
    let args = object_schema::<SecurePipelineArgs>(&mut types);
    let outputs = object_schema::<SecurePipelineOutputs>(&mut types);
    let config = object_schema::<ProviderConfig>(&mut types);

    json!({
        "name": PACKAGE,
        "displayName": "SecurePipeline",
        "description": "AWS CodePipeline/CodeBuild pipelines that are secure by construction.",
        "keywords": ["pulumi", "aws", "codepipeline", "codebuild", "ci-cd", "category/cloud", "kind/component"],
        "homepage": "https://github.com/securepipeline/pulumi-securepipeline",
        "repository": "https://github.com/securepipeline/pulumi-securepipeline",
        "license": "Apache-2.0",
        "publisher": "SecurePipeline",
        "pluginDownloadURL": PLUGIN_DOWNLOAD_URL,
        "meta": {"moduleFormat": "(.*)"},
        "config": {"variables": config.properties},
        "provider": {
            "description": config.description,
            "inputProperties": config.properties,
        },
        "types": types,
        "resources": {
            COMPONENT_TYPE: {
                "isComponent": true,
                "description": args.description,
                "inputProperties": args.properties,
                "requiredInputs": args.required,
                "properties": outputs.properties,
                "required": outputs.required,
            }
        },
        "language": {
            "nodejs": {
                "packageName": "@securepipeline/pulumi",
                "packageDescription": "SecurePipeline: secure-by-construction AWS CI/CD pipelines.",
                "dependencies": {"@pulumi/pulumi": format!("^{PULUMI_SDK_VERSION}")},
                "respectSchemaVersion": true
            },
            "python": {
                "packageName": "pulumi_securepipeline",
                "requires": {"pulumi": format!(">={PULUMI_SDK_VERSION},<4.0.0")},
                "pyproject": {"enabled": true},
                "respectSchemaVersion": true
            },
            "go": {
                "importBasePath": "github.com/securepipeline/pulumi-securepipeline/sdk/go/securepipeline",
                "rootPackageName": "securepipeline",
                "generateResourceContainerTypes": true,
                "respectSchemaVersion": true
            }
        }
    })
}

/// The schema the provider serves: the package schema with its version.
pub fn served_schema(version: &str) -> Json {
    let mut schema = package_schema();
    if let Json::Object(map) = &mut schema {
        map.insert("version".into(), Json::String(version.into()));
    }
    schema
}

struct ObjectSchema {
    description: Json,
    properties: Json,
    required: Json,
}

/// Converts a type's JSON Schema into Pulumi properties, adding every type
/// it references to `types`.
fn object_schema<T: JsonSchema>(types: &mut Map<String, Json>) -> ObjectSchema {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let root = generator.into_root_schema_for::<T>().to_value();
    if let Some(Json::Object(defs)) = root.get("$defs") {
        for (name, def) in defs {
            types.insert(token(name), convert_type(def));
        }
    }
    let converted = convert_object(&root);
    ObjectSchema {
        description: root.get("description").cloned().unwrap_or(Json::Null),
        properties: converted.get("properties").cloned().unwrap_or(json!({})),
        required: converted.get("required").cloned().unwrap_or(json!([])),
    }
}

fn token(name: &str) -> String {
    format!("{PACKAGE}:index:{name}")
}

/// A named type: an object or a string enum.
fn convert_type(def: &Json) -> Json {
    if let Some(variants) = def.get("oneOf").or_else(|| def.get("enum")) {
        let values: Vec<Json> = variants
            .as_array()
            .map(|items| items.iter().map(enum_value).collect())
            .unwrap_or_default();
        let mut out = json!({"type": "string", "enum": values});
        copy_description(def, &mut out);
        return out;
    }
    convert_object(def)
}

fn enum_value(variant: &Json) -> Json {
    match variant {
        Json::String(value) => json!({"value": value}),
        other => {
            let mut out = json!({"value": other.get("const").cloned().unwrap_or(Json::Null)});
            if let Some(title) = other.get("title") {
                out["name"] = title.clone();
            }
            copy_description(other, &mut out);
            out
        }
    }
}

fn convert_object(def: &Json) -> Json {
    let mut properties = Map::new();
    if let Some(Json::Object(props)) = def.get("properties") {
        for (name, prop) in props {
            let mut converted = convert_property(prop);
            copy_description(prop, &mut converted);
            properties.insert(name.clone(), converted);
        }
    }
    let mut out = json!({"type": "object", "properties": properties});
    if let Some(required) = def
        .get("required")
        .filter(|r| r.as_array().is_some_and(|a| !a.is_empty()))
    {
        out["required"] = required.clone();
    }
    copy_description(def, &mut out);
    out
}

/// A property's type, with `Option` (nullable) unwrapped.
fn convert_property(prop: &Json) -> Json {
    if let Some(reference) = prop.get("$ref").and_then(Json::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return json!({"$ref": format!("#/types/{}", token(name))});
    }
    if let Some(Json::Array(alternatives)) = prop.get("anyOf") {
        if let Some(inner) = alternatives
            .iter()
            .find(|alt| alt.get("type") != Some(&json!("null")))
        {
            return convert_property(inner);
        }
    }
    let kind = match prop.get("type") {
        Some(Json::Array(kinds)) => kinds.iter().find(|k| *k != "null").cloned(),
        other => other.cloned(),
    };
    match kind.as_ref().and_then(Json::as_str) {
        Some("array") => json!({
            "type": "array",
            "items": prop.get("items").map(convert_property).unwrap_or(json!({"type": "string"}))
        }),
        Some("object") => json!({
            "type": "object",
            "additionalProperties": prop
                .get("additionalProperties")
                .map(convert_property)
                .unwrap_or(json!({"type": "string"}))
        }),
        Some("integer") => json!({"type": "integer"}),
        Some("number") => json!({"type": "number"}),
        Some("boolean") => json!({"type": "boolean"}),
        _ => json!({"type": "string"}),
    }
}

fn copy_description(from: &Json, to: &mut Json) {
    if let Some(description) = from.get("description") {
        to["description"] = description.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_matches_the_types() {
        let committed: Json = serde_json::from_str(include_str!("../../schema/schema.json"))
            .expect("schema/schema.json is valid JSON");
        assert!(
            committed == package_schema(),
            "schema/schema.json is stale: run `cargo run -p pulumi-resource-securepipeline --bin gen-schema > schema/schema.json`"
        );
    }

    #[test]
    fn component_uses_the_api_names() {
        let schema = package_schema();
        let resource = &schema["resources"][COMPONENT_TYPE];
        assert_eq!(resource["isComponent"], true);
        assert_eq!(resource["requiredInputs"], json!(["source", "build"]));
        for input in [
            "source",
            "build",
            "deployments",
            "notifications",
            "schedule",
            "logRetentionDays",
            "artifactRetentionDays",
            "executionMode",
            "kmsKeyArn",
            "forceDestroy",
            "tags",
        ] {
            assert!(
                resource["inputProperties"].get(input).is_some(),
                "missing input {input}"
            );
        }
        for output in [
            "pipelineName",
            "pipelineArn",
            "pipelineUrl",
            "connectionArn",
            "connectionStatus",
            "artifactBucketName",
            "kmsKeyArn",
            "notificationTopicArn",
            "eventBridgeRoleArn",
            "buildProjectNames",
            "logGroupNames",
            "roleArns",
        ] {
            assert!(
                resource["properties"].get(output).is_some(),
                "missing output {output}"
            );
        }
        assert_eq!(
            resource["inputProperties"]["source"]["$ref"],
            "#/types/securepipeline:index:Source"
        );
        assert_eq!(
            schema["types"]["securepipeline:index:Build"]["properties"]["environment"]
                ["additionalProperties"]["$ref"],
            "#/types/securepipeline:index:EnvironmentVariable"
        );
    }

    #[test]
    fn enums_carry_values_and_names() {
        let schema = package_schema();
        let image = &schema["types"]["securepipeline:index:BuildImage"];
        assert_eq!(image["type"], "string");
        assert_eq!(image["enum"][0]["value"], "aws/codebuild/standard:7.0");
        assert_eq!(image["enum"][0]["name"], "Standard7");
        let events = &schema["types"]["securepipeline:index:NotificationEvent"]["enum"];
        assert_eq!(events[0]["value"], "FAILED");
    }

    #[test]
    fn config_has_the_provider_keys() {
        let schema = package_schema();
        let variables = &schema["config"]["variables"];
        for key in [
            "region",
            "profile",
            "assumeRole",
            "endpoints",
            "defaultTags",
        ] {
            assert!(variables.get(key).is_some(), "missing config {key}");
        }
        assert_eq!(
            variables["endpoints"]["additionalProperties"]["type"],
            "string"
        );
    }
}
