//! A KMS key the user brings (`kmsKeyArn`) is checked, not trusted: it must
//! be a customer managed, enabled, symmetric encryption key in the
//! pipeline's region with automatic rotation on. The pipeline's service
//! statements are merged into its policy under Sids of their own and taken
//! out again when the pipeline goes; every other statement is the user's and
//! is kept as it is.

use std::collections::BTreeSet;

use aws_sdk_kms::types::{KeyManagerType, KeySpec, KeyState, KeyUsageType};
use serde_json::Value as Json;

use crate::aws::arn::Arn;
use crate::aws::failure::AwsFailure;
use crate::iam::Statement;

/// What the checks need to know about a key, as DescribeKey and
/// GetKeyRotationStatus report it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFacts {
    pub key_id: String,
    pub arn: String,
    pub manager: KeyManagerType,
    pub state: KeyState,
    pub spec: KeySpec,
    pub usage: KeyUsageType,
    /// Read only for an enabled customer managed key (KMS refuses it for
    /// others, and they are rejected anyway).
    pub rotation: Option<bool>,
}

/// Everything wrong with the key for a pipeline in `region`, each with the
/// fix; empty when it will do.
pub fn problems(facts: &KeyFacts, region: &str) -> Vec<String> {
    let arn = &facts.arn;
    let mut problems = Vec::new();
    if facts.manager != KeyManagerType::Customer {
        problems.push(format!(
            "`{arn}` is an AWS managed key: only the service it belongs to may use it and its policy cannot change; give a customer managed key, or leave kmsKeyArn unset to have one created"
        ));
    }
    if facts.state != KeyState::Enabled {
        problems.push(format!(
            "`{arn}` is {}, not Enabled; enable it (`aws kms enable-key --key-id {arn}`) or give another key",
            facts.state.as_str()
        ));
    }
    if facts.spec != KeySpec::SymmetricDefault || facts.usage != KeyUsageType::EncryptDecrypt {
        problems.push(format!(
            "`{arn}` is a {} {} key; S3, CloudWatch Logs, SNS and CodeBuild encrypt only with a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key",
            facts.spec.as_str(),
            facts.usage.as_str()
        ));
    }
    match facts.arn.parse::<Arn>() {
        Ok(parsed) if parsed.region != region => problems.push(format!(
            "`{arn}` is in region {}, but the pipeline runs in {region}; give a key in {region}",
            parsed.region
        )),
        Ok(_) => {}
        Err(reason) => problems.push(format!("KMS returned key ARN `{arn}`: {reason}")),
    }
    if facts.rotation == Some(false) {
        problems.push(format!(
            "`{arn}` has automatic rotation off; turn it on (`aws kms enable-key-rotation --key-id {arn}`)"
        ));
    }
    problems
}

/// Why a key's facts could not be read.
#[derive(Debug)]
pub enum Unreadable {
    /// KMS knows no such key in this account and region.
    Missing { arn: String },
    /// KMS refused or failed.
    Aws(AwsFailure),
    /// KMS left out a fact the checks need; what is not reported is not
    /// assumed to be fine.
    Incomplete { arn: String, field: &'static str },
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { arn } => write!(
                f,
                "`{arn}` does not exist in this account and region; give the ARN of an existing key, or leave kmsKeyArn unset to have one created"
            ),
            Self::Aws(failure) => failure.fmt(f),
            Self::Incomplete { arn, field } => write!(
                f,
                "reading `{arn}`: KMS did not report the key's {field}"
            ),
        }
    }
}

/// Reads the key's facts; an error says why they could not be read.
pub async fn inspect(kms: &aws_sdk_kms::Client, arn: &str) -> Result<KeyFacts, Unreadable> {
    let described = kms
        .describe_key()
        .key_id(arn)
        .send()
        .await
        .map_err(|err| {
            let failure = AwsFailure::of(format!("reading `{arn}`"), &err);
            if failure.is(&["NotFoundException"]) {
                Unreadable::Missing {
                    arn: arn.to_string(),
                }
            } else if failure.is(&["AccessDeniedException"]) {
                Unreadable::Aws(failure.advise("allow the provider kms:DescribeKey, kms:GetKeyRotationStatus, kms:GetKeyPolicy and kms:PutKeyPolicy on the key"))
            } else {
                Unreadable::Aws(failure)
            }
        })?;
    let reported = |field: &'static str| Unreadable::Incomplete {
        arn: arn.to_string(),
        field,
    };
    let metadata = described
        .key_metadata()
        .ok_or_else(|| reported("metadata"))?;
    let mut facts = KeyFacts {
        key_id: metadata.key_id().to_string(),
        arn: metadata.arn().unwrap_or(arn).to_string(),
        manager: metadata
            .key_manager()
            .cloned()
            .ok_or_else(|| reported("KeyManager"))?,
        state: metadata
            .key_state()
            .cloned()
            .ok_or_else(|| reported("KeyState"))?,
        spec: metadata
            .key_spec()
            .cloned()
            .ok_or_else(|| reported("KeySpec"))?,
        usage: metadata
            .key_usage()
            .cloned()
            .ok_or_else(|| reported("KeyUsage"))?,
        rotation: None,
    };
    if facts.manager == KeyManagerType::Customer && facts.state == KeyState::Enabled {
        let rotation = kms
            .get_key_rotation_status()
            .key_id(arn)
            .send()
            .await
            .map_err(|err| {
                Unreadable::Aws(AwsFailure::of(
                    format!("reading the rotation of `{arn}`"),
                    &err,
                ))
            })?;
        facts.rotation = Some(rotation.key_rotation_enabled());
    }
    Ok(facts)
}

/// The key's facts when it will do for a pipeline in `region`, else every
/// problem with it.
pub async fn verify(
    kms: &aws_sdk_kms::Client,
    arn: &str,
    region: &str,
) -> Result<KeyFacts, Vec<String>> {
    let facts = inspect(kms, arn)
        .await
        .map_err(|reason| vec![reason.to_string()])?;
    let problems = problems(&facts, region);
    if problems.is_empty() {
        Ok(facts)
    } else {
        Err(problems)
    }
}

/// A key policy as JSON, its statements always a list.
struct KeyPolicy(serde_json::Map<String, Json>);

impl KeyPolicy {
    fn parse(text: &str) -> Result<Self, String> {
        let Ok(Json::Object(mut document)) = serde_json::from_str::<Json>(text) else {
            return Err("the key policy is not a JSON object".into());
        };
        let statements = match document.remove("Statement") {
            Some(Json::Array(list)) => list,
            Some(one @ Json::Object(_)) => vec![one],
            None => Vec::new(),
            Some(_) => {
                return Err("the key policy's Statement is neither a list nor an object".into())
            }
        };
        document.insert("Statement".into(), Json::Array(statements));
        Ok(Self(document))
    }

    fn statements(&self) -> &[Json] {
        self.0
            .get("Statement")
            .and_then(Json::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Keeps the statements whose Sid is not in `sids`; whether any went.
    fn drop_sids(&mut self, sids: &BTreeSet<String>) -> bool {
        let Some(Json::Array(list)) = self.0.get_mut("Statement") else {
            return false;
        };
        let before = list.len();
        list.retain(|statement| !sid_of(statement).is_some_and(|sid| sids.contains(sid)));
        list.len() != before
    }

    fn push(&mut self, statements: &[Statement]) -> Result<(), String> {
        let Some(Json::Array(list)) = self.0.get_mut("Statement") else {
            return Err("the key policy has no statement list".into());
        };
        for statement in statements {
            list.push(serde_json::to_value(statement).map_err(|err| err.to_string())?);
        }
        Ok(())
    }

    fn to_json(&self) -> String {
        Json::Object(self.0.clone()).to_string()
    }
}

fn sid_of(statement: &Json) -> Option<&str> {
    statement.get("Sid").and_then(Json::as_str)
}

/// Whether the policy holds exactly `ours`, and no statement under one of
/// `stale` (Sids the pipeline used before) besides.
pub fn holds(policy: &str, ours: &[Statement], stale: &BTreeSet<String>) -> bool {
    let Ok(policy) = KeyPolicy::parse(policy) else {
        return false;
    };
    let wanted: BTreeSet<&str> = ours.iter().filter_map(|s| s.sid.as_deref()).collect();
    let leftover = policy
        .statements()
        .iter()
        .filter_map(sid_of)
        .any(|sid| stale.contains(sid) && !wanted.contains(sid));
    !leftover
        && ours.iter().all(|our| {
            let same_sid: Vec<&Json> = policy
                .statements()
                .iter()
                .filter(|live| sid_of(live) == our.sid.as_deref())
                .collect();
            same_sid.len() == 1
                && serde_json::from_value::<Statement>(same_sid[0].clone())
                    .is_ok_and(|live| &live == our)
        })
}

/// The policy with the statements under `stale` and `ours`' Sids replaced
/// by `ours`; `None` when it already holds exactly them.
pub fn merge(
    policy: &str,
    ours: &[Statement],
    stale: &BTreeSet<String>,
) -> Result<Option<String>, String> {
    if holds(policy, ours, stale) {
        return Ok(None);
    }
    let mut merged = KeyPolicy::parse(policy)?;
    let mut replaced = stale.clone();
    replaced.extend(ours.iter().filter_map(|s| s.sid.clone()));
    merged.drop_sids(&replaced);
    merged.push(ours)?;
    Ok(Some(merged.to_json()))
}

/// The policy without the statements under `sids`; `None` when it has none.
pub fn withdraw(policy: &str, sids: &BTreeSet<String>) -> Result<Option<String>, String> {
    let mut policy = KeyPolicy::parse(policy)?;
    Ok(policy.drop_sids(sids).then(|| policy.to_json()))
}

/// What a user adds by hand when the provider may not write the policy:
/// the statements, ready to paste into the policy's `Statement` list.
pub fn required_statements(ours: &[Statement]) -> String {
    serde_json::to_string_pretty(ours).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::policy::Conditions;
    use crate::iam::Effect;

    const ARN: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn good() -> KeyFacts {
        KeyFacts {
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            arn: ARN.into(),
            manager: KeyManagerType::Customer,
            state: KeyState::Enabled,
            spec: KeySpec::SymmetricDefault,
            usage: KeyUsageType::EncryptDecrypt,
            rotation: Some(true),
        }
    }

    #[test]
    fn a_customer_managed_enabled_rotating_key_in_the_region_will_do() {
        assert_eq!(problems(&good(), "eu-west-1"), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named_with_its_fix() {
        let cases: [(KeyFacts, &str, &str); 5] = [
            (
                KeyFacts {
                    manager: KeyManagerType::Aws,
                    rotation: None,
                    ..good()
                },
                "eu-west-1",
                "AWS managed key",
            ),
            (
                KeyFacts {
                    state: KeyState::Disabled,
                    rotation: None,
                    ..good()
                },
                "eu-west-1",
                "is Disabled, not Enabled; enable it (`aws kms enable-key",
            ),
            (
                KeyFacts {
                    spec: KeySpec::Rsa2048,
                    usage: KeyUsageType::SignVerify,
                    ..good()
                },
                "eu-west-1",
                "is a RSA_2048 SIGN_VERIFY key",
            ),
            (
                good(),
                "us-east-1",
                "is in region eu-west-1, but the pipeline runs in us-east-1",
            ),
            (
                KeyFacts {
                    rotation: Some(false),
                    ..good()
                },
                "eu-west-1",
                "rotation off; turn it on (`aws kms enable-key-rotation",
            ),
        ];
        for (facts, region, expected) in cases {
            let found = problems(&facts, region);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].contains(expected), "{found:?}");
            assert!(found[0].contains(ARN), "{found:?}");
        }
    }

    fn ours(sid: &str, service: &str) -> Statement {
        Statement {
            sid: Some(sid.into()),
            effect: Effect::Allow,
            principal: Some([("Service".to_string(), vec![service.to_string()])].into()),
            actions: vec!["kms:Decrypt".into(), "kms:GenerateDataKey".into()],
            resources: vec!["*".into()],
            conditions: Conditions::from([(
                "StringEquals".to_string(),
                [(
                    "aws:SourceAccount".to_string(),
                    vec!["123456789012".to_string()],
                )]
                .into(),
            )]),
        }
    }

    /// A user's policy in AWS's shorthand, with a statement our types
    /// cannot represent (`NotPrincipal`), which must survive untouched.
    const USERS: &str = r#"{"Version":"2012-10-17","Id":"team-key","Statement":[{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},{"Sid":"NoOutsiders","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#;

    #[test]
    fn merging_adds_ours_and_keeps_every_user_statement() {
        let logs = ours(
            "SecurePipelineWebKeyServiceLogs",
            "logs.eu-west-1.amazonaws.com",
        );
        let merged = merge(USERS, std::slice::from_ref(&logs), &BTreeSet::new())
            .unwrap()
            .unwrap();
        let document: Json = serde_json::from_str(&merged).unwrap();
        let user: Json = serde_json::from_str(USERS).unwrap();
        assert_eq!(document["Id"], "team-key");
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(statements[..2], user["Statement"].as_array().unwrap()[..]);
        assert_eq!(statements.len(), 3);
        assert!(holds(
            &merged,
            std::slice::from_ref(&logs),
            &BTreeSet::new()
        ));
        // Merging again changes nothing.
        assert_eq!(
            merge(&merged, std::slice::from_ref(&logs), &BTreeSet::new()).unwrap(),
            None
        );
    }

    #[test]
    fn merging_replaces_changed_and_stale_statements_of_ours_only() {
        let logs = ours(
            "SecurePipelineWebKeyServiceLogs",
            "logs.eu-west-1.amazonaws.com",
        );
        let events = ours("SecurePipelineWebKeyServiceEvents", "events.amazonaws.com");
        let both = [logs.clone(), events.clone()];
        let merged = merge(USERS, &both, &BTreeSet::new()).unwrap().unwrap();
        // Someone widens our logs statement by hand: merging restores it.
        let widened = merged.replace(
            "\"aws:SourceAccount\":[\"123456789012\"]",
            "\"aws:SourceAccount\":[\"999999999999\"]",
        );
        assert!(!holds(&widened, &both, &BTreeSet::new()));
        let restored = merge(&widened, &both, &BTreeSet::new()).unwrap().unwrap();
        assert!(holds(&restored, &both, &BTreeSet::new()));
        // The pipeline no longer needs events: its statement goes as stale.
        let stale = BTreeSet::from([events.sid.clone().unwrap()]);
        let only_logs = std::slice::from_ref(&logs);
        assert!(!holds(&restored, only_logs, &stale));
        let trimmed = merge(&restored, only_logs, &stale).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Json>(&trimmed).unwrap()["Statement"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        // Withdrawing leaves the user's policy as it was.
        let sids = BTreeSet::from([logs.sid.clone().unwrap()]);
        let withdrawn = withdraw(&trimmed, &sids).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Json>(&withdrawn).unwrap(),
            serde_json::from_str::<Json>(USERS).unwrap()
        );
        assert_eq!(withdraw(&withdrawn, &sids).unwrap(), None);
    }

    #[test]
    fn a_policy_that_is_not_json_is_an_error_not_a_rewrite() {
        let logs = ours("S", "logs.eu-west-1.amazonaws.com");
        assert!(merge("[]", &[logs], &BTreeSet::new()).is_err());
        assert!(withdraw("not json", &BTreeSet::new()).is_err());
    }

    #[test]
    fn the_required_statements_are_pasteable_json() {
        let both = [
            ours(
                "SecurePipelineWebKeyServiceLogs",
                "logs.eu-west-1.amazonaws.com",
            ),
            ours("SecurePipelineWebKeyServiceEvents", "events.amazonaws.com"),
        ];
        let text = required_statements(&both);
        let parsed: Vec<Statement> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, both);
        assert!(text.contains("\"Sid\": \"SecurePipelineWebKeyServiceLogs\""));
    }
}
