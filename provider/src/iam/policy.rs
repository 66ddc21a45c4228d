//! IAM policy documents with a canonical form, so that a document read back
//! from AWS compares equal to the one written.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub const VERSION: &str = "2012-10-17";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// Condition operator -> condition key -> values.
pub type Conditions = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// Principal kind (`Service`, `AWS`) -> principals; trust policies only.
    #[serde(
        rename = "Principal",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "principal"
    )]
    pub principal: Option<BTreeMap<String, Vec<String>>>,
    #[serde(rename = "Action", deserialize_with = "one_or_many")]
    pub actions: Vec<String>,
    #[serde(
        rename = "Resource",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub resources: Vec<String>,
    #[serde(
        rename = "Condition",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "conditions"
    )]
    pub conditions: Conditions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statements: Vec<Statement>) -> Self {
        Self {
            version: VERSION.into(),
            statements,
        }
    }

    /// Minified JSON, the form IAM counts against its size limits.
    pub fn to_compact_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a document as AWS returns it (IAM returns it URL-encoded).
    pub fn parse_aws(text: &str) -> Result<Self, String> {
        let decoded = if text.trim_start().starts_with('{') {
            text.to_string()
        } else {
            urlencoding::decode(text)
                .map_err(|err| format!("policy document is not valid URL encoding: {err}"))?
                .into_owned()
        };
        serde_json::from_str(&decoded).map_err(|err| format!("policy document is not valid: {err}"))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Vec<String> {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(OneOrMany::deserialize(d)?.into())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrincipal {
    /// `"Principal": "*"`: everyone, the classic widened resource policy.
    Everyone(String),
    Kinds(BTreeMap<String, OneOrMany>),
}

fn principal<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, Vec<String>>>, D::Error> {
    let raw: Option<RawPrincipal> = Option::deserialize(d)?;
    Ok(raw.map(|principal| match principal {
        RawPrincipal::Everyone(who) => BTreeMap::from([("AWS".to_string(), vec![who])]),
        RawPrincipal::Kinds(map) => map.into_iter().map(|(k, v)| (k, v.into())).collect(),
    }))
}

fn conditions<'de, D: Deserializer<'de>>(d: D) -> Result<Conditions, D::Error> {
    let raw: BTreeMap<String, BTreeMap<String, OneOrMany>> = BTreeMap::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(op, keys)| (op, keys.into_iter().map(|(k, v)| (k, v.into())).collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aws_shorthand_into_the_canonical_form() {
        let aws = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#;
        let doc = PolicyDocument::parse_aws(aws).unwrap();
        assert_eq!(doc.statements[0].actions, vec!["s3:GetObject"]);
        assert_eq!(
            doc.statements[0].conditions["StringEquals"]["aws:SourceAccount"],
            vec!["123456789012"]
        );
    }

    #[test]
    fn a_bare_star_principal_reads_as_everyone() {
        let doc = PolicyDocument::parse_aws(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sns:Publish","Resource":"arn:aws:sns:us-east-1:123456789012:t"}]}"#,
        )
        .unwrap();
        assert_eq!(
            doc.statements[0].principal.as_ref().unwrap()["AWS"],
            vec!["*"]
        );
    }

    #[test]
    fn url_encoded_documents_round_trip() {
        let doc = PolicyDocument::new(vec![Statement {
            sid: Some("Logs".into()),
            effect: Effect::Allow,
            principal: None,
            actions: vec!["logs:PutLogEvents".into()],
            resources: vec!["arn:aws:logs:eu-west-1:123456789012:log-group:/a:log-stream:*".into()],
            conditions: Conditions::new(),
        }]);
        let encoded = urlencoding::encode(&doc.to_compact_json()).into_owned();
        assert_eq!(PolicyDocument::parse_aws(&encoded).unwrap(), doc);
    }
}
