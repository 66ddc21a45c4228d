//! Property values as JSON, the form resource kinds deserialize from.
//!
//! Secrets are unwrapped (and reported, so the caller can re-mark the
//! result); unknowns become the [`UNKNOWN`] sentinel string, which
//! deserializes into any string field and which checks skip.

use serde_json::Value as Json;

use super::value::PropertyValue;

/// The engine's wire sentinel for a value not known until apply.
pub const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// A property value converted to JSON, with what the conversion saw.
pub struct Converted {
    pub json: Json,
    pub secret: bool,
    pub unknown: bool,
}

pub fn property_to_json(value: &PropertyValue) -> Converted {
    let mut secret = false;
    let mut unknown = false;
    let json = convert(value, &mut secret, &mut unknown);
    Converted {
        json,
        secret,
        unknown,
    }
}

fn convert(value: &PropertyValue, secret: &mut bool, unknown: &mut bool) -> Json {
    match value {
        PropertyValue::Null => Json::Null,
        PropertyValue::Bool(b) => Json::Bool(*b),
        PropertyValue::Number(n) => number(*n),
        PropertyValue::String(s) => {
            *unknown |= s == UNKNOWN;
            Json::String(s.clone())
        }
        PropertyValue::Array(items) => Json::Array(
            items
                .iter()
                .map(|item| convert(item, secret, unknown))
                .collect(),
        ),
        PropertyValue::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), convert(v, secret, unknown)))
                .collect(),
        ),
        PropertyValue::Secret(inner) => {
            *secret = true;
            convert(inner, secret, unknown)
        }
        PropertyValue::Computed => {
            *unknown = true;
            Json::String(UNKNOWN.to_string())
        }
        PropertyValue::Output(output) => {
            *secret |= output.secret;
            match &output.value {
                Some(inner) => convert(inner, secret, unknown),
                None => {
                    *unknown = true;
                    Json::String(UNKNOWN.to_string())
                }
            }
        }
        // Resource kinds take ARNs and names, never references or assets;
        // a reference is represented by its URN so that a check can name it.
        PropertyValue::ResourceReference(reference) => Json::String(reference.urn.clone()),
        PropertyValue::Asset(_) | PropertyValue::Archive(_) => Json::Null,
    }
}

/// The property paths (`build.environment.X.value`, `emails[0]`) of the
/// values marked secret inside `value`, which is at `path`, so that checks
/// can tell which input was secret, not only that one was.
pub fn secret_paths(value: &PropertyValue, path: &str) -> Vec<String> {
    let mut found = Vec::new();
    collect_secret_paths(value, path, &mut found);
    found
}

fn collect_secret_paths(value: &PropertyValue, path: &str, found: &mut Vec<String>) {
    match value {
        PropertyValue::Secret(inner) => {
            found.push(path.to_string());
            collect_secret_paths(inner, path, found);
        }
        PropertyValue::Output(output) => {
            if output.secret {
                found.push(path.to_string());
            }
            if let Some(inner) = &output.value {
                collect_secret_paths(inner, path, found);
            }
        }
        PropertyValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_secret_paths(item, &format!("{path}[{index}]"), found);
            }
        }
        PropertyValue::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_secret_paths(item, &child, found);
            }
        }
        _ => {}
    }
}

/// Integral values stay integers so that `u32` fields deserialize.
fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

pub fn json_to_property(value: &Json) -> PropertyValue {
    match value {
        Json::Null => PropertyValue::Null,
        Json::Bool(b) => PropertyValue::Bool(*b),
        Json::Number(n) => PropertyValue::Number(n.as_f64().unwrap_or_default()),
        Json::String(s) if s == UNKNOWN => PropertyValue::Computed,
        Json::String(s) => PropertyValue::String(s.clone()),
        Json::Array(items) => PropertyValue::Array(items.iter().map(json_to_property).collect()),
        Json::Object(map) => PropertyValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_property(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknowns_become_the_sentinel_and_back() {
        let converted = property_to_json(&PropertyValue::Array(vec![PropertyValue::Computed]));
        assert!(converted.unknown);
        assert_eq!(converted.json, json!([UNKNOWN]));
        assert_eq!(
            json_to_property(&converted.json),
            PropertyValue::Array(vec![PropertyValue::Computed])
        );
    }

    #[test]
    fn nested_secrets_are_unwrapped_and_reported() {
        let value = PropertyValue::Object(
            [(
                "token".to_string(),
                PropertyValue::Secret(Box::new(PropertyValue::String("x".into()))),
            )]
            .into_iter()
            .collect(),
        );
        let converted = property_to_json(&value);
        assert!(converted.secret);
        assert!(!converted.unknown);
        assert_eq!(converted.json, json!({"token": "x"}));
    }

    proptest::proptest! {
        /// The typed view reports exactly the unknowns and secrets the wire
        /// value held, and converting back restores the unknowns.
        #[test]
        fn conversion_reports_unknowns_and_secrets(value in crate::protocol::value::tests::value()) {
            let converted = property_to_json(&value);
            proptest::prop_assert_eq!(converted.unknown, value.contains_unknowns());
            proptest::prop_assert_eq!(converted.secret, value.contains_secrets());
            proptest::prop_assert_eq!(json_to_property(&converted.json).contains_unknowns(), converted.unknown);
        }
    }

    #[test]
    fn secret_paths_name_each_secret_value() {
        let secret = |v: PropertyValue| PropertyValue::Secret(Box::new(v));
        let object = |pairs: Vec<(&str, PropertyValue)>| {
            PropertyValue::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        let value = object(vec![
            (
                "environment",
                object(vec![
                    (
                        "PLAIN",
                        object(vec![("value", PropertyValue::String("a".into()))]),
                    ),
                    (
                        "HIDDEN",
                        object(vec![("value", secret(PropertyValue::String("b".into())))]),
                    ),
                ]),
            ),
            (
                "commands",
                PropertyValue::Array(vec![
                    PropertyValue::String("make".into()),
                    secret(PropertyValue::String("x".into())),
                ]),
            ),
        ]);
        assert_eq!(
            secret_paths(&value, "build"),
            vec!["build.commands[1]", "build.environment.HIDDEN.value"]
        );
        assert_eq!(secret_paths(&secret(value), "build")[0], "build");
    }

    #[test]
    fn integral_numbers_stay_integers() {
        assert_eq!(
            property_to_json(&PropertyValue::Number(30.0)).json,
            json!(30)
        );
        assert_eq!(
            property_to_json(&PropertyValue::Number(1.5)).json,
            json!(1.5)
        );
    }
}
