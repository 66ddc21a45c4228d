//! `securepipeline:aws:EventRule`: an EventBridge rule with its targets.
//! Event patterns are generated here from what the rule is for; nobody
//! writes one.
//!
//! A rule either runs on a schedule (and starts a pipeline through a role
//! the component creates) or matches one pipeline's execution state changes
//! (and publishes to the notification topic). Refresh reads the schedule or
//! pattern, the state, every target and the tags back, so a widened
//! pattern, a disabled rule or an added target shows as drift.

use async_trait::async_trait;
use aws_sdk_eventbridge::config::http::HttpResponse;
use aws_sdk_eventbridge::error::{ErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::put_targets::PutTargetsError;
use aws_sdk_eventbridge::types::{PutTargetsResultEntry, RuleState, Tag, Target};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::common::{check_arn, enabled, from_sdk_tags, sdk_tags};
use crate::aws::arn::Arn;
use crate::aws::failure::AwsFailure;
use crate::aws::retry::Transient;
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

/// EventBridge schedule expressions: `rate(N unit)` or `cron(6 fields)`.
pub fn check_schedule(expression: &str) -> Result<(), String> {
    if is_unknown(expression) {
        return Ok(());
    }
    let help =
        "use rate(N minutes|hours|days) or cron(minutes hours day-of-month month day-of-week year)";
    if let Some(body) = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let mut parts = body.split_whitespace();
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{expression}` is not a valid rate; {help}"));
        };
        let Ok(n) = value.parse::<u32>() else {
            return Err(format!("`{expression}` needs a whole number; {help}"));
        };
        let unit_ok = match n {
            0 => false,
            1 => ["minute", "hour", "day"].contains(&unit),
            _ => ["minutes", "hours", "days"].contains(&unit),
        };
        return if unit_ok {
            Ok(())
        } else {
            Err(format!(
                "`{expression}` has unit `{unit}`; {help} (singular for 1)"
            ))
        };
    }
    if let Some(body) = expression
        .strip_prefix("cron(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [_, _, day_of_month, _, day_of_week, _] = fields.as_slice() else {
            return Err(format!(
                "`{expression}` has {} fields; EventBridge cron takes 6: {help}",
                fields.len()
            ));
        };
        if *day_of_month != "?" && *day_of_week != "?" {
            return Err(format!(
                "`{expression}`: one of day-of-month and day-of-week must be `?`"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "`{expression}` is not a schedule expression; {help}"
    ))
}

/// Stage and action execution states EventBridge reports.
pub const STAGE_STATES: &[&str] = &[
    "CANCELED",
    "FAILED",
    "RESUMED",
    "STARTED",
    "STOPPED",
    "STOPPING",
    "SUCCEEDED",
];
pub const ACTION_STATES: &[&str] = &["ABANDONED", "CANCELED", "FAILED", "STARTED", "SUCCEEDED"];

const PIPELINE_CHANGE: &str = "CodePipeline Pipeline Execution State Change";
const STAGE_CHANGE: &str = "CodePipeline Stage Execution State Change";
const ACTION_CHANGE: &str = "CodePipeline Action Execution State Change";

/// Pipeline execution states EventBridge reports.
pub const PIPELINE_STATES: &[&str] = &[
    "CANCELED",
    "FAILED",
    "RESUMED",
    "STARTED",
    "STOPPED",
    "STOPPING",
    "SUCCEEDED",
    "SUPERSEDED",
];

/// EventBridge's limits: targets per rule, description length, target id
/// length.
const MAX_TARGETS: usize = 5;
const DESCRIPTION_MAX: usize = 512;
const TARGET_ID_MAX: usize = 64;

const TARGET_EXAMPLE: &str = "arn:aws:sns:eu-west-1:123456789012:app-notify-abcd1234";
const ROLE_EXAMPLE: &str = "arn:aws:iam::123456789012:role/app-events-abcd1234";

pub struct EventRule;

/// Execution state changes of one pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStateChange {
    pub pipeline_name: String,
    /// FAILED, SUCCEEDED, CANCELED, SUPERSEDED, STARTED...
    pub states: Vec<String>,
    /// Stage execution states that also match (FAILED...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage_states: Vec<String>,
    /// Action execution states that also match (FAILED...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action_states: Vec<String>,
}

impl PipelineStateChange {
    /// Execution state changes of the pipeline only.
    pub fn of_executions(pipeline_name: &str, states: Vec<String>) -> Self {
        Self {
            pipeline_name: pipeline_name.to_string(),
            states,
            stage_states: Vec::new(),
            action_states: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuleTarget {
    pub id: String,
    pub arn: String,
    /// The role EventBridge uses to reach the target (needed for pipelines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventRuleInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    pub description: String,
    /// Exactly one of `scheduleExpression` and `pipelineStateChange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_state_change: Option<PipelineStateChange>,
    /// The pattern; set by `check` from `pipelineStateChange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_pattern: Option<Json>,
    pub targets: Vec<RuleTarget>,
    /// Always true; an input so that refresh shows a disabled rule.
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventRuleOutputs {
    pub arn: String,
}

/// The only pattern a pipeline notification rule has: this pipeline's
/// execution state changes in these states and, when asked, its stage and
/// action state changes in theirs (one `$or` branch per detail-type).
pub fn state_change_pattern(change: &PipelineStateChange) -> Json {
    let pipeline = &change.pipeline_name;
    if change.stage_states.is_empty() && change.action_states.is_empty() {
        return json!({
            "source": ["aws.codepipeline"],
            "detail-type": [PIPELINE_CHANGE],
            "detail": {"pipeline": [pipeline], "state": change.states},
        });
    }
    let branches: Vec<Json> = [
        (PIPELINE_CHANGE, &change.states),
        (STAGE_CHANGE, &change.stage_states),
        (ACTION_CHANGE, &change.action_states),
    ]
    .into_iter()
    .filter(|(_, states)| !states.is_empty())
    .map(|(detail_type, states)| {
        json!({"detail-type": [detail_type], "detail": {"pipeline": [pipeline], "state": states}})
    })
    .collect();
    json!({"source": ["aws.codepipeline"], "$or": branches})
}

/// The pattern as EventBridge receives it: compact, with keys sorted, so
/// the same pattern is always the same text.
pub fn pattern_text(pattern: &Json) -> String {
    fn sorted(value: &Json) -> Json {
        match value {
            Json::Object(map) => {
                let mut entries: Vec<(&String, &Json)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Json::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(pattern).to_string()
}

/// Checks the pipeline and sorts the states, dropping repeats.
fn check_state_change(change: &mut PipelineStateChange) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    failures.extend(naming::check(
        "pipelineStateChange.pipelineName",
        &change.pipeline_name,
        &naming::PIPELINE,
    ));
    if change.states.is_empty() && change.stage_states.is_empty() && change.action_states.is_empty()
    {
        failures.push(CheckFailure::new(
            "pipelineStateChange.states",
            format!("name at least one execution state to notify on, e.g. [\"FAILED\"]; one of {PIPELINE_STATES:?}"),
        ));
    }
    for (property, what, states, allowed) in [
        ("states", "pipeline", &mut change.states, PIPELINE_STATES),
        (
            "stageStates",
            "stage",
            &mut change.stage_states,
            STAGE_STATES,
        ),
        (
            "actionStates",
            "action",
            &mut change.action_states,
            ACTION_STATES,
        ),
    ] {
        for (index, state) in states.iter().enumerate() {
            if !is_unknown(state) && !allowed.contains(&state.as_str()) {
                failures.push(CheckFailure::new(
                    format!("pipelineStateChange.{property}[{index}]"),
                    format!("`{state}` is not a {what} execution state; use one of {allowed:?}"),
                ));
            }
        }
        states.sort();
        states.dedup();
    }
    failures
}

fn check_targets(ctx: &CheckContext<'_>, targets: &[RuleTarget]) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    if targets.is_empty() || targets.len() > MAX_TARGETS {
        failures.push(CheckFailure::new(
            "targets",
            format!(
                "a rule needs 1 to {MAX_TARGETS} targets; {} given",
                targets.len()
            ),
        ));
    }
    for (index, target) in targets.iter().enumerate() {
        let at = |field: &str| format!("targets[{index}].{field}");
        let id_ok = |c: char| c.is_ascii_alphanumeric() || ".-_".contains(c);
        let id_len = target.id.chars().count();
        if !is_unknown(&target.id)
            && (id_len == 0 || id_len > TARGET_ID_MAX || !target.id.chars().all(id_ok))
        {
            failures.push(CheckFailure::new(
                at("id"),
                format!(
                    "`{}` is not a target id; use 1 to {TARGET_ID_MAX} letters, digits and . - _",
                    target.id
                ),
            ));
        }
        if targets[..index].iter().any(|other| other.id == target.id) {
            failures.push(CheckFailure::new(
                at("id"),
                format!(
                    "`{}` is already the id of another target; give each target its own id",
                    target.id
                ),
            ));
        }
        failures.extend(check_arn(
            ctx,
            &at("arn"),
            &target.arn,
            &["sns", "codepipeline"],
            "",
            TARGET_EXAMPLE,
            true,
        ));
        if let Some(role_arn) = &target.role_arn {
            failures.extend(check_arn(
                ctx,
                &at("roleArn"),
                role_arn,
                &["iam"],
                "role/",
                ROLE_EXAMPLE,
                false,
            ));
        }
        let Ok(arn) = target.arn.parse::<Arn>() else {
            continue;
        };
        match (arn.service.as_str(), &target.role_arn) {
            ("codepipeline", role) => {
                failures.extend(naming::check(&at("arn"), &arn.resource, &naming::PIPELINE));
                if role.is_none() {
                    failures.push(CheckFailure::new(
                        at("roleArn"),
                        "EventBridge starts a pipeline only through a role; give the role SecurePipeline creates for schedules (trusted only by events.amazonaws.com, allowed only codepipeline:StartPipelineExecution on this pipeline)",
                    ));
                }
            }
            ("sns", Some(_)) => failures.push(CheckFailure::new(
                at("roleArn"),
                "EventBridge publishes to a topic as itself, allowed by the topic policy, not through a role; remove roleArn",
            )),
            ("sns", None) => failures.extend(naming::check(&at("arn"), &arn.resource, &naming::SNS_TOPIC)),
            _ => {}
        }
    }
    failures
}

/// EventBridge's answer for a rule that does not exist.
const GONE: &[&str] = &["ResourceNotFoundException"];

#[async_trait]
impl CustomResource for EventRule {
    const TYPE: &'static str = "securepipeline:aws:EventRule";
    type Inputs = EventRuleInputs;
    type Outputs = EventRuleOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName = AutoName::new(
        "ruleName",
        &naming::EVENT_RULE,
        "event rule",
        NameScope::Region,
    );
    const PLACEMENT: Placement = Placement::Regional;

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        let description_len = news.description.chars().count();
        if description_len > DESCRIPTION_MAX {
            failures.push(
                "description",
                format!("EventBridge allows at most {DESCRIPTION_MAX} characters; this one has {description_len}"),
            );
        }

        let pattern = match (&news.schedule_expression, &mut news.pipeline_state_change) {
            (Some(_), Some(_)) | (None, None) => {
                failures.push(
                    "scheduleExpression",
                    "give exactly one of scheduleExpression (start a pipeline on a schedule) and pipelineStateChange (notify on a pipeline's executions)",
                );
                None
            }
            (Some(expression), None) => {
                if let Err(reason) = check_schedule(expression) {
                    failures.push("scheduleExpression", reason);
                }
                None
            }
            (None, Some(change)) => {
                failures.extend(check_state_change(change));
                Some(state_change_pattern(change))
            }
        };
        if news.event_pattern.is_some() && news.event_pattern != pattern {
            failures.push(
                "eventPattern",
                "the event pattern is computed from pipelineStateChange (a scheduled rule has none), so no program can widen what the rule matches; remove eventPattern",
            );
        }
        news.event_pattern = pattern;
        if !news.enabled {
            failures.push(
                "enabled",
                "a disabled rule silently stops notifications or scheduled runs; remove the rule instead of disabling it",
            );
        }

        failures.extend(check_targets(ctx, &news.targets));
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        _token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let name = ctx.name()?;
        // PutRule overwrites a rule of the same name: one that exists before
        // this create belongs to something else and is never taken over.
        // (Repeating PutRule after a lost answer is safe: it writes the same.)
        if find_rule(ctx, name).await?.is_some() {
            return Err(ResourceError::Failed(Self::NAME.taken(name)));
        }
        put_rule(ctx, name, inputs, Some(aws_tags(&inputs.tags)?)).await?;
        let outputs = EventRuleOutputs {
            arn: ctx.arns().events_rule(name),
        };
        Ok((name.to_string(), outputs))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        put_targets(ctx, id, &inputs.targets).await
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let Some(rule) = find_rule(ctx, id).await? else {
            return Ok(None);
        };
        let event_pattern = rule
            .event_pattern()
            .filter(|text| !text.is_empty())
            .map(serde_json::from_str::<Json>)
            .transpose()
            .map_err(|err| {
                ResourceError::failed(format!("reading the event pattern of rule {id}"), err)
            })?;
        let Some(targets) = live_targets(ctx, id).await? else {
            return Ok(None);
        };

        let mut live_inputs = inputs.clone();
        live_inputs.rule_name = Some(id.to_string());
        live_inputs.description = rule.description().unwrap_or_default().to_string();
        live_inputs.schedule_expression = rule
            .schedule_expression()
            .filter(|expression| !expression.is_empty())
            .map(str::to_string);
        live_inputs.event_pattern = event_pattern;
        // Anything but ENABLED (DISABLED, or matching more CloudTrail events)
        // is drift that check rejects and the next update restores.
        live_inputs.enabled = rule.state() == Some(&RuleState::Enabled);
        live_inputs.targets = in_input_order(targets, &inputs.targets);
        let arn = ctx.arns().events_rule(id);
        Ok(Some((live_inputs, EventRuleOutputs { arn })))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let rule_changed = olds.description != news.description
            || olds.schedule_expression != news.schedule_expression
            || olds.event_pattern != news.event_pattern
            || olds.enabled != news.enabled;
        if rule_changed {
            // PutRule replaces the whole rule definition and keeps its targets.
            put_rule(ctx, id, news, None).await?;
        }
        // Removed first, so that replacing targets never exceeds the limit.
        let removed: Vec<String> = olds
            .targets
            .iter()
            .filter(|old| !news.targets.iter().any(|new| new.id == old.id))
            .map(|old| old.id.clone())
            .collect();
        if !removed.is_empty() {
            remove_targets(ctx, id, removed).await?;
        }
        let changed: Vec<RuleTarget> = news
            .targets
            .iter()
            .filter(|t| !olds.targets.contains(t))
            .cloned()
            .collect();
        if !changed.is_empty() {
            put_targets(ctx, id, &changed).await?;
        }
        Ok(outputs.clone())
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        // EventBridge deletes only a rule without targets. List what is live
        // rather than what the state says: drift may have added targets.
        let Some(targets) = live_targets(ctx, id).await? else {
            return Ok(());
        };
        if !targets.is_empty() {
            remove_targets(ctx, id, targets.into_iter().map(|t| t.id).collect()).await?;
        }
        let events = &ctx.clients().events;
        ctx.delete(format!("deleting event rule {id}"), GONE, || {
            events.delete_rule().name(id).send()
        })
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let events = &ctx.clients().events;
        let arn = ctx.arns().events_rule(id);
        let listed = ctx
            .find(format!("reading tags of event rule {id}"), GONE, || {
                events.list_tags_for_resource().resource_arn(&arn).send()
            })
            .await?;
        Ok(listed.map(|listed| from_sdk_tags(listed.tags(), |tag| (tag.key(), tag.value()))))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let events = &ctx.clients().events;
        let arn = ctx.arns().events_rule(id);
        let arn = &arn;
        let set = aws_tags(&change.set)?;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging event rule {id}"), move || {
                        events
                            .untag_resource()
                            .resource_arn(arn)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |_| {
                    ctx.call(format!("tagging event rule {id}"), || {
                        events
                            .tag_resource()
                            .resource_arn(arn)
                            .set_tags(Some(set.clone()))
                            .send()
                    })
                },
            )
            .await?;
        Ok(())
    }
}

fn aws_tags(tags: &Tags) -> Result<Vec<Tag>, ResourceError> {
    sdk_tags(tags, |key, value| {
        Tag::builder().key(key).value(value).build()
    })
}

/// The rule's definition; `None` when there is no such rule.
async fn find_rule(
    ctx: &Op<'_>,
    name: &str,
) -> Result<Option<aws_sdk_eventbridge::operation::describe_rule::DescribeRuleOutput>, AwsFailure> {
    let events = &ctx.clients().events;
    ctx.find(format!("reading event rule {name}"), GONE, || {
        events.describe_rule().name(name).send()
    })
    .await
}

/// Creates or replaces the rule's definition (PutRule upserts). Tags are
/// given only when creating; later changes go through TagResource.
async fn put_rule(
    ctx: &Op<'_>,
    name: &str,
    inputs: &EventRuleInputs,
    tags: Option<Vec<Tag>>,
) -> Result<(), AwsFailure> {
    let events = &ctx.clients().events;
    let pattern = inputs.event_pattern.as_ref().map(pattern_text);
    ctx.call(format!("putting event rule {name}"), || {
        events
            .put_rule()
            .name(name)
            .description(&inputs.description)
            .set_schedule_expression(inputs.schedule_expression.clone())
            .set_event_pattern(pattern.clone())
            .state(RuleState::Enabled)
            .set_tags(tags.clone())
            .send()
    })
    .await
    .map(drop)
}

/// Adds or replaces targets. PutTargets reports per-target failures in its
/// response; they are raised as the service error they describe, so that
/// the same named retry rules judge them.
async fn put_targets(
    ctx: &Op<'_>,
    rule: &str,
    targets: &[RuleTarget],
) -> Result<(), ResourceError> {
    let events = &ctx.clients().events;
    let targets = targets
        .iter()
        .map(|t| {
            Target::builder()
                .id(&t.id)
                .arn(&t.arn)
                .set_role_arn(t.role_arn.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            ResourceError::failed(format!("building targets of event rule {rule}"), err)
        })?;
    // A role created moments ago may not yet be assumable by EventBridge.
    let propagation = [Transient::Propagation {
        code: "ValidationException",
        message_contains: "cannot be assumed",
    }];
    let targets = &targets;
    ctx.call_waiting(
        format!("putting targets of event rule {rule}"),
        &propagation,
        move || async move {
            let output = events
                .put_targets()
                .rule(rule)
                .set_targets(Some(targets.clone()))
                .send()
                .await?;
            match failed_entries(output.failed_entries()) {
                Some(err) => Err(err),
                None => Ok(()),
            }
        },
    )
    .await?;
    Ok(())
}

/// Per-target failures as one service error: the first entry's code, every
/// entry's target and message.
fn failed_entries(
    entries: &[PutTargetsResultEntry],
) -> Option<SdkError<PutTargetsError, HttpResponse>> {
    let first = entries.first()?;
    let message = entries
        .iter()
        .map(|entry| {
            format!(
                "target {}: {}",
                entry.target_id().unwrap_or("(no id)"),
                entry.error_message().unwrap_or("no reason given")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let error = PutTargetsError::generic(
        ErrorMetadata::builder()
            .code(first.error_code().unwrap_or("FailedEntry"))
            .message(message)
            .build(),
    );
    Some(match StatusCode::try_from(400_u16) {
        Ok(status) => SdkError::service_error(error, HttpResponse::new(status, SdkBody::empty())),
        Err(_) => SdkError::construction_failure(error),
    })
}

/// Removes targets; a rule that is gone has none left.
async fn remove_targets(ctx: &Op<'_>, rule: &str, ids: Vec<String>) -> Result<(), ResourceError> {
    let events = &ctx.clients().events;
    let removed = ctx
        .find(
            format!("removing targets of event rule {rule}"),
            GONE,
            || {
                events
                    .remove_targets()
                    .rule(rule)
                    .set_ids(Some(ids.clone()))
                    .send()
            },
        )
        .await?;
    let Some(output) = removed else {
        return Ok(());
    };
    let failures: Vec<String> = output
        .failed_entries()
        .iter()
        .map(|entry| {
            format!(
                "target {}: {}",
                entry.target_id().unwrap_or("(no id)"),
                entry
                    .error_message()
                    .or(entry.error_code())
                    .unwrap_or("no reason given")
            )
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ResourceError::failed(
            format!("removing targets of event rule {rule}"),
            failures.join("; "),
        ))
    }
}

/// Every target of the rule, or `None` when the rule is gone.
async fn live_targets(ctx: &Op<'_>, rule: &str) -> Result<Option<Vec<RuleTarget>>, AwsFailure> {
    let events = &ctx.clients().events;
    let mut targets = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = ctx
            .find(
                format!("reading targets of event rule {rule}"),
                GONE,
                || {
                    events
                        .list_targets_by_rule()
                        .rule(rule)
                        .set_next_token(next_token.clone())
                        .send()
                },
            )
            .await?;
        let Some(page) = page else {
            return Ok(None);
        };
        targets.extend(page.targets().iter().map(|target| RuleTarget {
            id: target.id().to_string(),
            arn: target.arn().to_string(),
            role_arn: target.role_arn().map(str::to_string),
        }));
        next_token = page.next_token().map(str::to_string);
        if next_token.is_none() {
            return Ok(Some(targets));
        }
    }
}

/// Live targets in the order the inputs name them, others after by id, so
/// that an unchanged rule reads back equal to its inputs.
fn in_input_order(mut live: Vec<RuleTarget>, wanted: &[RuleTarget]) -> Vec<RuleTarget> {
    live.sort_by_cached_key(|target| {
        let position = wanted
            .iter()
            .position(|w| w.id == target.id)
            .unwrap_or(usize::MAX);
        (position, target.id.clone())
    });
    live
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::{AwsContext, Endpoints};
    use crate::resource::Lifecycle;
    use crate::tags;

    const PIPELINE: &str = "arn:aws:codepipeline:eu-west-1:123456789012:app-pipeline-abcd1234";
    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:app-notify-abcd1234";
    const ROLE: &str = "arn:aws:iam::123456789012:role/app-events-abcd1234";

    pub(crate) fn notify() -> EventRuleInputs {
        EventRuleInputs {
            name_prefix: "app-notify".into(),
            rule_name: None,
            description: "Notifies on executions of pipeline app".into(),
            schedule_expression: None,
            pipeline_state_change: Some(PipelineStateChange::of_executions(
                "app-pipeline-abcd1234",
                vec!["SUCCEEDED".into(), "FAILED".into(), "FAILED".into()],
            )),
            event_pattern: None,
            targets: vec![RuleTarget {
                id: "notification-topic".into(),
                arn: TOPIC.into(),
                role_arn: None,
            }],
            enabled: true,
            tags: Tags::new(),
        }
    }

    pub(crate) fn schedule() -> EventRuleInputs {
        EventRuleInputs {
            name_prefix: "app-schedule".into(),
            schedule_expression: Some("rate(1 day)".into()),
            pipeline_state_change: None,
            targets: vec![RuleTarget {
                id: "pipeline".into(),
                arn: PIPELINE.into(),
                role_arn: Some(ROLE.into()),
            }],
            ..notify()
        }
    }

    fn check(
        olds: Option<&EventRuleInputs>,
        news: EventRuleInputs,
    ) -> Result<EventRuleInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "notify",
            random_seed: b"seed",
            aws: None,
        };
        EventRule::check(&ctx, olds, news)
    }

    fn properties(news: EventRuleInputs) -> Vec<String> {
        check(None, news)
            .unwrap_err()
            .into_iter()
            .map(|f| f.property)
            .collect()
    }

    pub(crate) fn aws() -> AwsContext {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsContext::new(
            sdk,
            Endpoints::default(),
            "123456789012".into(),
            "aws".into(),
            "eu-west-1".into(),
            Default::default(),
        )
    }

    #[test]
    fn chooses_a_name_and_adds_managed_tags() {
        let checked = check(None, notify()).unwrap();
        let name = checked.rule_name.clone().unwrap();
        assert!(name.starts_with("app-notify-"), "{name}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let again = check(Some(&checked), notify()).unwrap();
        assert_eq!(again.rule_name, checked.rule_name);
    }

    #[test]
    fn computes_the_pattern_from_the_pipeline_and_sorted_states() {
        let checked = check(None, notify()).unwrap();
        assert_eq!(
            checked.pipeline_state_change.as_ref().unwrap().states,
            vec!["FAILED", "SUCCEEDED"]
        );
        assert_eq!(
            checked.event_pattern,
            Some(json!({
                "source": ["aws.codepipeline"],
                "detail-type": ["CodePipeline Pipeline Execution State Change"],
                "detail": {"pipeline": ["app-pipeline-abcd1234"], "state": ["FAILED", "SUCCEEDED"]},
            }))
        );
        // Checking the checked inputs again changes nothing.
        assert_eq!(check(Some(&checked), checked.clone()).unwrap(), checked);
        assert_eq!(check(None, schedule()).unwrap().event_pattern, None);
    }

    #[test]
    fn pattern_text_is_compact_with_sorted_keys() {
        let pattern = json!({"source": ["aws.codepipeline"], "detail": {"state": ["FAILED"], "pipeline": ["p"]}});
        assert_eq!(
            pattern_text(&pattern),
            r#"{"detail":{"pipeline":["p"],"state":["FAILED"]},"source":["aws.codepipeline"]}"#
        );
        assert_eq!(
            serde_json::from_str::<Json>(&pattern_text(&pattern)).unwrap(),
            pattern
        );
    }

    #[test]
    fn nobody_writes_an_event_pattern() {
        let wider = EventRuleInputs {
            event_pattern: Some(json!({"source": ["aws.codepipeline"]})),
            ..notify()
        };
        assert_eq!(properties(wider), vec!["eventPattern"]);
        let with_schedule = EventRuleInputs {
            event_pattern: Some(json!({"source": ["aws.codepipeline"]})),
            ..schedule()
        };
        assert_eq!(properties(with_schedule), vec!["eventPattern"]);
        // The computed pattern itself is accepted (the engine may send it back).
        let computed = check(None, notify()).unwrap().event_pattern;
        assert!(check(
            None,
            EventRuleInputs {
                event_pattern: computed,
                ..notify()
            }
        )
        .is_ok());
    }

    #[test]
    fn needs_exactly_one_of_schedule_and_state_change() {
        let both = EventRuleInputs {
            schedule_expression: Some("rate(1 day)".into()),
            ..notify()
        };
        assert_eq!(properties(both), vec!["scheduleExpression"]);
        let neither = EventRuleInputs {
            pipeline_state_change: None,
            ..notify()
        };
        assert_eq!(properties(neither), vec!["scheduleExpression"]);
        let bad = EventRuleInputs {
            schedule_expression: Some("every day".into()),
            ..schedule()
        };
        assert_eq!(properties(bad), vec!["scheduleExpression"]);
    }

    #[test]
    fn stage_and_action_states_match_through_one_branch_each() {
        let mut news = notify();
        let change = news.pipeline_state_change.as_mut().unwrap();
        change.stage_states = vec!["FAILED".into()];
        change.action_states = vec!["FAILED".into(), "FAILED".into()];
        let checked = check(None, news).unwrap();
        assert_eq!(
            checked.event_pattern.unwrap(),
            json!({"source": ["aws.codepipeline"], "$or": [
                {"detail-type": ["CodePipeline Pipeline Execution State Change"],
                 "detail": {"pipeline": ["app-pipeline-abcd1234"], "state": ["FAILED", "SUCCEEDED"]}},
                {"detail-type": ["CodePipeline Stage Execution State Change"],
                 "detail": {"pipeline": ["app-pipeline-abcd1234"], "state": ["FAILED"]}},
                {"detail-type": ["CodePipeline Action Execution State Change"],
                 "detail": {"pipeline": ["app-pipeline-abcd1234"], "state": ["FAILED"]}}
            ]})
        );
        // Stage failures alone need no execution state.
        let mut news = notify();
        let change = news.pipeline_state_change.as_mut().unwrap();
        change.states.clear();
        change.stage_states = vec!["FAILED".into()];
        change.action_states = vec!["BROKEN".into()];
        assert_eq!(
            properties(news),
            vec!["pipelineStateChange.actionStates[0]"]
        );
    }

    #[test]
    fn rejects_unknown_and_missing_states_and_a_disabled_rule() {
        let mut news = notify();
        news.pipeline_state_change.as_mut().unwrap().states =
            vec!["FAILED".into(), "BROKEN".into()];
        assert_eq!(properties(news), vec!["pipelineStateChange.states[1]"]);
        let mut news = notify();
        news.pipeline_state_change.as_mut().unwrap().states.clear();
        assert_eq!(properties(news), vec!["pipelineStateChange.states"]);
        assert_eq!(
            properties(EventRuleInputs {
                enabled: false,
                ..notify()
            }),
            vec!["enabled"]
        );
    }

    #[test]
    fn a_pipeline_target_needs_the_role_the_component_creates() {
        let mut news = schedule();
        news.targets[0].role_arn = None;
        let failures = check(None, news).unwrap_err();
        assert_eq!(failures[0].property, "targets[0].roleArn");
        assert!(
            failures[0].reason.contains("SecurePipeline creates"),
            "{}",
            failures[0].reason
        );
        let mut news = notify();
        news.targets[0].role_arn = Some(ROLE.into());
        assert_eq!(properties(news), vec!["targets[0].roleArn"]);
        let mut news = schedule();
        news.targets[0].role_arn = Some("arn:aws:iam::123456789012:user/admin".into());
        assert_eq!(properties(news), vec!["targets[0].roleArn"]);
    }

    #[test]
    fn targets_are_counted_named_and_unique() {
        let target = |id: &str| RuleTarget {
            id: id.into(),
            arn: TOPIC.into(),
            role_arn: None,
        };
        assert_eq!(
            properties(EventRuleInputs {
                targets: vec![],
                ..notify()
            }),
            vec!["targets"]
        );
        let six = (0..6).map(|i| target(&format!("t{i}"))).collect();
        assert_eq!(
            properties(EventRuleInputs {
                targets: six,
                ..notify()
            }),
            vec!["targets"]
        );
        let news = EventRuleInputs {
            targets: vec![target("a b"), target("x"), target("x")],
            ..notify()
        };
        assert_eq!(properties(news), vec!["targets[0].id", "targets[2].id"]);
        let news = EventRuleInputs {
            targets: vec![RuleTarget {
                id: "q".into(),
                arn: "arn:aws:sqs:eu-west-1:123456789012:q".into(),
                role_arn: None,
            }],
            ..notify()
        };
        assert_eq!(properties(news), vec!["targets[0].arn"]);
    }

    #[test]
    fn targets_and_roles_must_be_in_the_callers_account_and_region() {
        let aws = aws();
        let ctx = CheckContext {
            name: "schedule",
            random_seed: b"seed",
            aws: Some(&aws),
        };
        let mut news = schedule();
        news.targets[0].arn = PIPELINE.replace("eu-west-1", "us-east-1");
        news.targets[0].role_arn = Some(ROLE.replace("123456789012", "210987654321"));
        let failures = EventRule::check(&ctx, None, news).unwrap_err();
        let failed: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(failed, vec!["targets[0].arn", "targets[0].roleArn"]);
        assert!(EventRule::check(&ctx, None, schedule()).is_ok());
    }

    #[test]
    fn unknown_values_are_checked_later() {
        let mut news = notify();
        news.targets[0].arn = crate::protocol::json::UNKNOWN.into();
        news.pipeline_state_change.as_mut().unwrap().pipeline_name =
            crate::protocol::json::UNKNOWN.into();
        assert!(check(None, news).is_ok());
    }

    #[test]
    fn live_targets_follow_the_input_order() {
        let target = |id: &str| RuleTarget {
            id: id.into(),
            arn: TOPIC.into(),
            role_arn: None,
        };
        let ordered = in_input_order(
            vec![target("z"), target("b"), target("a")],
            &[target("b"), target("a")],
        );
        let ids: Vec<_> = ordered.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, vec!["b", "a", "z"]);
    }

    #[test]
    fn failed_entries_become_a_service_error() {
        assert!(failed_entries(&[]).is_none());
        let entry = PutTargetsResultEntry::builder()
            .target_id("pipeline")
            .error_code("ValidationException")
            .error_message("Provided role cannot be assumed by principal 'events.amazonaws.com'.")
            .build();
        let failure = AwsFailure::of("putting targets", &failed_entries(&[entry]).unwrap());
        assert!(failure.is(&["ValidationException"]));
        assert_eq!(
            failure.reason(),
            "ValidationException: target pipeline: Provided role cannot be assumed by principal 'events.amazonaws.com'."
        );
    }
}
