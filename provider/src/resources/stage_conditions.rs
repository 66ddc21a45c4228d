//! V2 stage conditions on a `securepipeline:aws:Pipeline` stage: the rules
//! checked before a stage is entered (`beforeEntry`) and after it succeeds
//! (`onSuccess`). Only the AWS-owned rule types a gate needs are accepted,
//! so a stage condition can never run commands or assume another role.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_codepipeline::types::{
    BeforeEntryConditions, Condition as AwsCondition, Result as ConditionResult, RuleCategory,
    RuleDeclaration, RuleOwner, RuleTypeId, SuccessConditions,
};
use aws_smithy_types::error::operation::BuildError;
use serde::{Deserialize, Serialize};

use crate::resource::{is_unknown, Failures};

/// The rule type version CodePipeline documents for its AWS-owned rules.
const RULE_VERSION: &str = "1";

/// CodePipeline's limit on the rules of one condition.
pub const MAX_RULES: usize = 5;

/// The AWS-owned rule providers a stage condition may use, each with the
/// configuration keys CodePipeline requires and the ones it also accepts.
const PROVIDERS: [(&str, &[&str], &[&str]); 2] = [
    ("DeploymentWindow", &["Cron"], &["TimeZone"]),
    ("CloudWatchAlarm", &["AlarmName"], &["WaitTime"]),
];

/// One rule of a condition: an AWS-owned rule type and its configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub name: String,
    /// `DeploymentWindow` or `CloudWatchAlarm`.
    pub provider: String,
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
}

/// A condition: what happens when its rules do not all pass.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `FAIL` before entry; `ROLLBACK` or `FAIL` on success.
    pub result: String,
    pub rules: Vec<Rule>,
}

/// Where a condition sits on a stage, which decides the results it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    BeforeEntry,
    OnSuccess,
}

impl Moment {
    fn property(self) -> &'static str {
        match self {
            Moment::BeforeEntry => "beforeEntry",
            Moment::OnSuccess => "onSuccess",
        }
    }

    fn results(self) -> &'static [&'static str] {
        match self {
            // A stage not yet entered has nothing to roll back.
            Moment::BeforeEntry => &["FAIL"],
            Moment::OnSuccess => &["ROLLBACK", "FAIL"],
        }
    }
}

/// Rejects conditions CodePipeline would refuse or that this provider does
/// not allow, naming `{path}.{beforeEntry|onSuccess}[i]…` in each failure.
pub fn check_conditions(
    failures: &mut Failures,
    path: &str,
    moment: Moment,
    conditions: &[Condition],
) {
    let base = format!("{path}.{}", moment.property());
    if conditions.len() > 1 {
        failures.push(
            base.as_str(),
            "a stage takes one condition here; put every rule in that one condition",
        );
    }
    for (index, condition) in conditions.iter().enumerate() {
        let at = format!("{base}[{index}]");
        if !is_unknown(&condition.result) && !moment.results().contains(&condition.result.as_str())
        {
            failures.push(
                format!("{at}.result"),
                format!(
                    "`{}` is not a result here; use {}",
                    condition.result,
                    moment.results().join(" or ")
                ),
            );
        }
        if condition.rules.is_empty() || condition.rules.len() > MAX_RULES {
            failures.push(
                format!("{at}.rules"),
                format!(
                    "{} rules; a condition holds 1 to {MAX_RULES}",
                    condition.rules.len()
                ),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (position, rule) in condition.rules.iter().enumerate() {
            check_rule(failures, &format!("{at}.rules[{position}]"), rule);
            if !names.insert(rule.name.as_str()) {
                failures.push(
                    format!("{at}.rules[{position}].name"),
                    format!(
                        "rule name `{}` is used twice; give each rule a unique name",
                        rule.name
                    ),
                );
            }
        }
    }
}

fn check_rule(failures: &mut Failures, at: &str, rule: &Rule) {
    let valid_name = !rule.name.is_empty()
        && rule.name.chars().count() <= 100
        && rule
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@_-".contains(c));
    if !is_unknown(&rule.name) && !valid_name {
        failures.push(
            format!("{at}.name"),
            format!(
                "`{}` is not a valid rule name; use 1 to 100 of A-Z a-z 0-9 . @ _ -",
                rule.name
            ),
        );
    }
    let Some((_, required, optional)) = PROVIDERS.iter().find(|(p, _, _)| *p == rule.provider)
    else {
        if !is_unknown(&rule.provider) {
            failures.push(
                format!("{at}.provider"),
                format!(
                    "`{}` is not a rule this pipeline allows; use {}",
                    rule.provider,
                    PROVIDERS.map(|(p, _, _)| p).join(" or ")
                ),
            );
        }
        return;
    };
    for key in *required {
        if !rule.configuration.contains_key(*key) {
            failures.push(
                format!("{at}.configuration.{key}"),
                format!("a {} rule needs {key}", rule.provider),
            );
        }
    }
    for key in rule.configuration.keys() {
        if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            failures.push(
                format!("{at}.configuration.{key}"),
                format!(
                    "a {} rule takes only {}",
                    rule.provider,
                    required
                        .iter()
                        .chain(optional.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
}

fn aws_condition(condition: &Condition) -> Result<AwsCondition, BuildError> {
    let rules = condition
        .rules
        .iter()
        .map(|rule| {
            RuleDeclaration::builder()
                .name(&rule.name)
                .rule_type_id(
                    RuleTypeId::builder()
                        .category(RuleCategory::Rule)
                        .owner(RuleOwner::Aws)
                        .provider(&rule.provider)
                        .version(RULE_VERSION)
                        .build()?,
                )
                .set_configuration(Some(
                    rule.configuration
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>(),
                ))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AwsCondition::builder()
        .result(ConditionResult::from(condition.result.as_str()))
        .set_rules(Some(rules))
        .build())
}

fn aws_conditions(conditions: &[Condition]) -> Result<Option<Vec<AwsCondition>>, BuildError> {
    if conditions.is_empty() {
        return Ok(None);
    }
    conditions
        .iter()
        .map(aws_condition)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The stage's `beforeEntry`, absent when it has no condition.
pub fn before_entry(conditions: &[Condition]) -> Result<Option<BeforeEntryConditions>, BuildError> {
    aws_conditions(conditions)?
        .map(|c| {
            BeforeEntryConditions::builder()
                .set_conditions(Some(c))
                .build()
        })
        .transpose()
}

/// The stage's `onSuccess`, absent when it has no condition.
pub fn on_success(conditions: &[Condition]) -> Result<Option<SuccessConditions>, BuildError> {
    aws_conditions(conditions)?
        .map(|c| SuccessConditions::builder().set_conditions(Some(c)).build())
        .transpose()
}

/// Conditions as the live pipeline declares them, so drift in any rule shows.
pub fn live_conditions(conditions: &[AwsCondition]) -> Vec<Condition> {
    conditions
        .iter()
        .map(|condition| Condition {
            result: condition
                .result()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            rules: condition
                .rules()
                .iter()
                .map(|rule| Rule {
                    name: rule.name().to_string(),
                    provider: rule
                        .rule_type_id()
                        .map(|t| t.provider().to_string())
                        .unwrap_or_default(),
                    configuration: rule
                        .configuration()
                        .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm_condition(result: &str) -> Condition {
        Condition {
            result: result.into(),
            rules: vec![Rule {
                name: "alarms".into(),
                provider: "CloudWatchAlarm".into(),
                configuration: BTreeMap::from([
                    ("AlarmName".into(), "errors".into()),
                    ("WaitTime".into(), "30".into()),
                ]),
            }],
        }
    }

    fn window_condition() -> Condition {
        Condition {
            result: "FAIL".into(),
            rules: vec![Rule {
                name: "window".into(),
                provider: "DeploymentWindow".into(),
                configuration: BTreeMap::from([
                    ("Cron".into(), "* 0-59 9-16 ? * MON-FRI".into()),
                    ("TimeZone".into(), "Europe/Berlin".into()),
                ]),
            }],
        }
    }

    fn failures_of(moment: Moment, conditions: &[Condition]) -> Vec<String> {
        let mut failures = Failures::default();
        check_conditions(&mut failures, "stages[2]", moment, conditions);
        match failures.into_result(()) {
            Ok(()) => Vec::new(),
            Err(found) => found.into_iter().map(|f| f.property).collect(),
        }
    }

    #[test]
    fn conditions_round_trip_through_the_declaration() {
        let conditions = vec![window_condition()];
        let declared = before_entry(&conditions).unwrap().unwrap();
        assert_eq!(live_conditions(declared.conditions()), conditions);
        let declared = declared.conditions()[0].rules()[0].rule_type_id().unwrap();
        assert_eq!(declared.category(), &RuleCategory::Rule);
        assert_eq!(declared.owner(), Some(&RuleOwner::Aws));
        assert_eq!(declared.version(), Some("1"));
        let conditions = vec![alarm_condition("ROLLBACK")];
        let declared = on_success(&conditions).unwrap().unwrap();
        assert_eq!(live_conditions(declared.conditions()), conditions);
        assert!(before_entry(&[]).unwrap().is_none());
    }

    #[test]
    fn valid_conditions_pass() {
        assert!(failures_of(Moment::BeforeEntry, &[window_condition()]).is_empty());
        assert!(failures_of(Moment::OnSuccess, &[alarm_condition("ROLLBACK")]).is_empty());
    }

    #[test]
    fn a_rollback_before_entry_is_rejected() {
        assert_eq!(
            failures_of(Moment::BeforeEntry, &[alarm_condition("ROLLBACK")]),
            vec!["stages[2].beforeEntry[0].result"]
        );
    }

    #[test]
    fn only_gate_rules_with_their_keys_are_accepted() {
        let mut commands = window_condition();
        commands.rules[0].provider = "Commands".into();
        assert_eq!(
            failures_of(Moment::BeforeEntry, &[commands]),
            vec!["stages[2].beforeEntry[0].rules[0].provider"]
        );
        let mut keys = alarm_condition("FAIL");
        keys.rules[0].configuration.remove("AlarmName");
        keys.rules[0]
            .configuration
            .insert("RoleArn".into(), "arn:aws:iam::1:role/x".into());
        assert_eq!(
            failures_of(Moment::OnSuccess, &[keys]),
            vec![
                "stages[2].onSuccess[0].rules[0].configuration.AlarmName",
                "stages[2].onSuccess[0].rules[0].configuration.RoleArn"
            ]
        );
    }

    #[test]
    fn rules_and_conditions_are_counted_and_named() {
        let mut twice = window_condition();
        twice.rules.push(twice.rules[0].clone());
        let empty = Condition {
            result: "FAIL".into(),
            rules: vec![],
        };
        assert_eq!(
            failures_of(Moment::BeforeEntry, &[twice, empty]),
            vec![
                "stages[2].beforeEntry",
                "stages[2].beforeEntry[0].rules[1].name",
                "stages[2].beforeEntry[1].rules"
            ]
        );
    }
}
