//! Secrecy that follows the value. A component input that is secret may
//! reach a child embedded in something larger (a command inside a
//! generated buildspec, an email inside a subscription list, a tag value),
//! so the component cannot rely on input paths alone: it remembers the
//! plaintext of every secret it was given and treats any value that
//! contains one as secret too, and never echoes one in a message.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::value::{PropertyMap, PropertyValue};

/// What replaces a secret's plaintext in messages.
pub const REDACTED: &str = "[secret]";

/// The plaintext strings of every secret in a set of inputs.
#[derive(Debug, Clone, Default)]
pub struct SecretValues {
    plaintexts: BTreeSet<String>,
}

impl SecretValues {
    /// Every non-empty string inside a secret, at any depth of `inputs`.
    pub fn of(inputs: &PropertyMap) -> Self {
        let mut found = Self::default();
        for value in inputs.values() {
            found.collect(value, false);
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.plaintexts.is_empty()
    }

    fn collect(&mut self, value: &PropertyValue, inside_secret: bool) {
        match value {
            PropertyValue::Secret(inner) => self.collect(inner, true),
            PropertyValue::Output(output) => {
                if let Some(inner) = &output.value {
                    self.collect(inner, inside_secret || output.secret);
                }
            }
            PropertyValue::String(text) if inside_secret && !text.is_empty() => {
                self.plaintexts.insert(text.clone());
            }
            PropertyValue::Array(items) => {
                for item in items {
                    self.collect(item, inside_secret);
                }
            }
            PropertyValue::Object(map) => {
                for item in map.values() {
                    self.collect(item, inside_secret);
                }
            }
            _ => {}
        }
    }

    /// The forms a secret takes inside a value: as given, and escaped the
    /// way JSON and double-quoted YAML escape it (generated buildspecs and
    /// policies embed strings that way).
    fn forms(&self) -> impl Iterator<Item = String> + '_ {
        self.plaintexts.iter().flat_map(|plain| {
            let quoted = Json::String(plain.clone()).to_string();
            let escaped = quoted[1..quoted.len() - 1].to_string();
            [plain.clone(), escaped]
        })
    }

    /// Whether the text holds a secret.
    pub fn appear_in(&self, text: &str) -> bool {
        self.forms().any(|form| text.contains(&form))
    }

    /// Whether any string inside the value holds a secret.
    pub fn taint(&self, value: &Json) -> bool {
        match value {
            Json::String(text) => self.appear_in(text),
            Json::Array(items) => items.iter().any(|item| self.taint(item)),
            Json::Object(map) => map.values().any(|item| self.taint(item)),
            _ => false,
        }
    }

    /// The top-level keys of an object whose values hold a secret.
    pub fn tainted_keys(&self, object: &Json) -> BTreeSet<String> {
        match object {
            Json::Object(map) if !self.is_empty() => map
                .iter()
                .filter(|(_, value)| self.taint(value))
                .map(|(key, _)| key.clone())
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// The text with every secret replaced by [`REDACTED`], longest first
    /// so that a secret containing another is redacted whole.
    pub fn redact(&self, text: &str) -> String {
        let mut forms: Vec<String> = self.forms().collect();
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms.iter().fold(text.to_string(), |out, form| {
            out.replace(form.as_str(), REDACTED)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::value::OutputValue;
    use serde_json::json;

    fn secret(text: &str) -> PropertyValue {
        PropertyValue::Secret(Box::new(PropertyValue::String(text.into())))
    }

    fn inputs() -> PropertyMap {
        let mut build = PropertyMap::new();
        build.insert(
            "commands".into(),
            PropertyValue::Array(vec![
                PropertyValue::String("npm test".into()),
                secret("curl -H \"X-Key: k3y\" example.com"),
            ]),
        );
        let mut map = PropertyMap::new();
        map.insert("build".into(), PropertyValue::Object(build));
        map.insert(
            "email".into(),
            PropertyValue::Output(OutputValue {
                value: Some(Box::new(PropertyValue::String("ops@example.com".into()))),
                secret: true,
                dependencies: vec![],
            }),
        );
        map.insert("name".into(), PropertyValue::String("app".into()));
        map
    }

    #[test]
    fn collects_strings_inside_secrets_and_secret_outputs_only() {
        let found = SecretValues::of(&inputs());
        assert!(found.appear_in("ops@example.com"));
        assert!(found.appear_in("curl -H \"X-Key: k3y\" example.com"));
        assert!(!found.appear_in("npm test"));
        assert!(!found.appear_in("app"));
    }

    #[test]
    fn taints_values_that_embed_a_secret_escaped_or_not() {
        let found = SecretValues::of(&inputs());
        let child = json!({
            "buildspec": "phases:\n  build:\n    commands:\n    - \"curl -H \\\"X-Key: k3y\\\" example.com\"\n",
            "subscriptions": [{"endpoint": "ops@example.com"}],
            "name": "app-build",
        });
        assert_eq!(
            found.tainted_keys(&child),
            BTreeSet::from(["buildspec".to_string(), "subscriptions".to_string()])
        );
    }

    #[test]
    fn redacts_every_form_of_a_secret() {
        let found = SecretValues::of(&inputs());
        let message =
            "`ops@example.com` is not allowed in `curl -H \\\"X-Key: k3y\\\" example.com`";
        let redacted = found.redact(message);
        assert_eq!(redacted, "`[secret]` is not allowed in `[secret]`");
    }

    #[test]
    fn nothing_secret_taints_nothing() {
        let mut map = PropertyMap::new();
        map.insert("name".into(), PropertyValue::String("app".into()));
        let found = SecretValues::of(&map);
        assert!(found.tainted_keys(&json!({"name": "app"})).is_empty());
        assert_eq!(found.redact("app"), "app");
    }
}
