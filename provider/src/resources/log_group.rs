//! `securepipeline:aws:LogGroup`: a CloudWatch Logs group with retention
//! and KMS encryption, created before the CodeBuild project that writes to
//! it, so no log group is ever auto-created with infinite retention.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::LogGroup as AwsLogGroup;
use serde::{Deserialize, Serialize};

use super::common::{check_kms_key_arn, effective_tags, progress, AWS_TRANSIENT};
use crate::aws::arn::{is_region, Arn};
use crate::aws::retry::{
    create_once, describe, is_code, once, retry, Backoff, CreateError, Transient,
};
use crate::naming;
use crate::resource::{
    is_unknown, CheckContext, CheckFailure, CustomResource, Failures, OpContext, ResourceError,
};
use crate::tags::{self, Tags};

/// Retention periods CloudWatch Logs accepts.
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub struct LogGroup;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupInputs {
    /// Where the auto-name starts; the component derives it from its name.
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group_name: Option<String>,
    /// The region the group lives in (a stage in another region logs
    /// there); absent means the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub retention_in_days: u32,
    pub kms_key_arn: String,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupOutputs {
    pub arn: String,
}

/// The group's region: the input, or the provider's.
fn region<'a>(ctx: &'a OpContext<'_>, inputs: &'a LogGroupInputs) -> &'a str {
    inputs.region.as_deref().unwrap_or(&ctx.aws.region)
}

/// The name, once `check` has chosen it.
fn name(inputs: &LogGroupInputs) -> Result<&str, ResourceError> {
    inputs
        .log_group_name
        .as_deref()
        .ok_or_else(|| ResourceError::Failed("logGroupName was not set by check".into()))
}

pub fn check_retention(property: &str, days: u32) -> Option<CheckFailure> {
    (!RETENTION_DAYS.contains(&days)).then(|| {
        CheckFailure::new(
            property,
            format!(
                "{days} is not a retention CloudWatch Logs accepts; use one of {RETENTION_DAYS:?}"
            ),
        )
    })
}

/// The region must be a region, and CloudWatch Logs only encrypts with a
/// key in the group's own region.
fn check_region_and_key(
    ctx: &CheckContext<'_>,
    region: Option<&str>,
    key_arn: &str,
) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    let region = match region {
        Some(region) if is_unknown(region) => return failures,
        Some(region) if !is_region(region) => {
            failures.push(CheckFailure::new(
                "region",
                format!("`{region}` is not an AWS region; for example eu-west-1"),
            ));
            return failures;
        }
        Some(region) => region,
        None => match ctx.aws {
            Some(aws) => aws.region.as_str(),
            None => return failures,
        },
    };
    if let Ok(key) = key_arn.parse::<Arn>() {
        if key.service == "kms" && key.region != region {
            failures.push(CheckFailure::new(
                "kmsKeyArn",
                format!(
                    "the key is in {} but the log group is in {region}; use a key in {region}",
                    key.region
                ),
            ));
        }
    }
    failures
}

#[async_trait]
impl CustomResource for LogGroup {
    const TYPE: &'static str = "securepipeline:aws:LogGroup";
    type Inputs = LogGroupInputs;
    type Outputs = LogGroupOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn"];
    const REPLACE_KEYS: &'static [&'static str] = &["namePrefix", "logGroupName"];

    fn check(
        ctx: &CheckContext<'_>,
        olds: Option<&Self::Inputs>,
        mut news: Self::Inputs,
    ) -> Result<Self::Inputs, Vec<CheckFailure>> {
        let mut failures = Failures::default();
        let prefix = format!("/securepipeline/{}", news.name_prefix);
        let old_prefix = olds.map(|o| format!("/securepipeline/{}", o.name_prefix));
        let chosen = news.log_group_name.clone().unwrap_or_else(|| {
            naming::choose(
                olds.and_then(|o| o.log_group_name.as_deref()),
                old_prefix.as_deref(),
                &prefix,
                &naming::LOG_GROUP,
                ctx.random_seed,
            )
        });
        failures.extend(naming::check("logGroupName", &chosen, &naming::LOG_GROUP));
        news.log_group_name = Some(chosen);
        failures.extend(check_retention("retentionInDays", news.retention_in_days));
        failures.extend(check_kms_key_arn(ctx, "kmsKeyArn", &news.kms_key_arn));
        failures.extend(check_region_and_key(
            ctx,
            news.region.as_deref(),
            &news.kms_key_arn,
        ));
        failures.extend(tags::validate("tags", &news.tags));
        news.tags = effective_tags(ctx, &news.tags);
        failures.into_result(news)
    }

    async fn create(
        ctx: &OpContext<'_>,
        inputs: &Self::Inputs,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let clients = ctx.aws.clients_in(region(ctx, inputs));
        let logs = &clients.logs;
        let name = name(inputs)?;
        // The key policy granting CloudWatch Logs may still be propagating.
        let retry_on = [
            AWS_TRANSIENT[0],
            AWS_TRANSIENT[1],
            Transient::Propagation {
                code: "AccessDeniedException",
                message_contains: "KMS",
            },
            Transient::Propagation {
                code: "InvalidParameterException",
                message_contains: "KMS",
            },
        ];
        let arn = ctx
            .aws
            .arns()
            .in_region(region(ctx, inputs))
            .log_group(name);
        let token = tags::new_create_token();
        let tags = tags::with_create_token(&inputs.tags, &token);
        create_once(
            progress(ctx),
            "creating log group",
            &retry_on,
            &["ResourceAlreadyExistsException"],
            || {
                logs.create_log_group()
                    .log_group_name(name)
                    .kms_key_id(&inputs.kms_key_arn)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .customize()
                    .config_override(
                        aws_sdk_cloudwatchlogs::config::Builder::default().retry_config(once()),
                    )
                    .send()
            },
            || group_with_token(logs, &arn, &token),
        )
        .await
        .map_err(|err| match err {
            CreateError::Taken => ResourceError::Failed(format!(
                "log group {name} already exists in this account and region and was not created by this resource, \
                 so it is not adopted; choose another logGroupName, or delete the group if nothing uses it"
            )),
            other => ResourceError::create_failed(format!("creating log group {name}"), other),
        })?;

        let outputs = LogGroupOutputs { arn };
        // From here on the group exists: a failure must hand it to the engine.
        set_retention(ctx, logs, name, inputs.retention_in_days)
            .await
            .map_err(|message| ResourceError::Partial {
                id: name.to_string(),
                state: crate::resource::to_json(&outputs),
                message,
            })?;
        Ok((name.to_string(), outputs))
    }

    async fn read(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let clients = ctx.aws.clients_in(region(ctx, inputs));
        let Some(live) = find(&clients.logs, id).await? else {
            return Ok(None);
        };
        let arn = ctx.aws.arns().in_region(region(ctx, inputs)).log_group(id);
        let tags = clients
            .logs
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|err| ResourceError::aws(format!("reading tags of log group {id}"), &err))?
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| key != tags::CREATE_TOKEN_KEY)
            .collect();
        let mut live_inputs = inputs.clone();
        live_inputs.log_group_name = Some(id.to_string());
        // Retention removed in the console reads as 0, which check rejects
        // and the next update restores.
        live_inputs.retention_in_days = live.retention_in_days().map_or(0, |d| d.max(0) as u32);
        live_inputs.kms_key_arn = live.kms_key_id().unwrap_or_default().to_string();
        live_inputs.tags = tags;
        Ok(Some((live_inputs, LogGroupOutputs { arn })))
    }

    async fn update(
        ctx: &OpContext<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let clients = ctx.aws.clients_in(region(ctx, news));
        let logs = &clients.logs;
        if olds.retention_in_days != news.retention_in_days {
            set_retention(ctx, logs, id, news.retention_in_days)
                .await
                .map_err(ResourceError::Failed)?;
        }
        if olds.kms_key_arn != news.kms_key_arn {
            logs.associate_kms_key()
                .log_group_name(id)
                .kms_key_id(&news.kms_key_arn)
                .send()
                .await
                .map_err(|err| ResourceError::aws(format!("encrypting log group {id}"), &err))?;
        }
        let (set, remove) = tags::changes(&olds.tags, &news.tags);
        if !remove.is_empty() {
            logs.untag_resource()
                .resource_arn(&outputs.arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|err| ResourceError::aws(format!("untagging log group {id}"), &err))?;
        }
        if !set.is_empty() {
            logs.tag_resource()
                .resource_arn(&outputs.arn)
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .map_err(|err| ResourceError::aws(format!("tagging log group {id}"), &err))?;
        }
        Ok(outputs.clone())
    }

    async fn delete(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        let clients = ctx.aws.clients_in(region(ctx, inputs));
        match clients
            .logs
            .delete_log_group()
            .log_group_name(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_code(&err, &["ResourceNotFoundException"]) => Ok(()),
            Err(err) => Err(ResourceError::aws(format!("deleting log group {id}"), &err)),
        }
    }
}

async fn set_retention(
    ctx: &OpContext<'_>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
    days: u32,
) -> Result<(), String> {
    retry(
        progress(ctx),
        "setting log retention",
        &AWS_TRANSIENT,
        Backoff::default(),
        || {
            logs.put_retention_policy()
                .log_group_name(name)
                .retention_in_days(days as i32)
                .send()
        },
    )
    .await
    .map(|_| ())
    .map_err(|err| format!("setting retention of log group {name}: {}", describe(&err)))
}

async fn find(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Result<Option<AwsLogGroup>, ResourceError> {
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|err| ResourceError::aws(format!("reading log group {name}"), &err))?;
    Ok(groups
        .log_groups
        .unwrap_or_default()
        .into_iter()
        .find(|group| group.log_group_name() == Some(name)))
}

/// Whether the group `arn` exists and carries this create's `token`.
async fn group_with_token(
    logs: &aws_sdk_cloudwatchlogs::Client,
    arn: &str,
    token: &str,
) -> Result<Option<()>, String> {
    match logs.list_tags_for_resource().resource_arn(arn).send().await {
        Ok(listed) => Ok(listed
            .tags()
            .and_then(|tags| tags.get(tags::CREATE_TOKEN_KEY))
            .filter(|value| value.as_str() == token)
            .map(|_| ())),
        Err(err) if is_code(&err, &["ResourceNotFoundException"]) => Ok(None),
        Err(err) => Err(format!(
            "reading tags of log group {arn}: {}",
            describe(&err)
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn inputs() -> LogGroupInputs {
        LogGroupInputs {
            name_prefix: "app-build".into(),
            log_group_name: None,
            region: None,
            retention_in_days: 30,
            kms_key_arn:
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            tags: Tags::new(),
        }
    }

    fn check(
        olds: Option<&LogGroupInputs>,
        news: LogGroupInputs,
    ) -> Result<LogGroupInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "build-logs",
            random_seed: b"seed",
            aws: None,
        };
        LogGroup::check(&ctx, olds, news)
    }

    #[test]
    fn chooses_a_name_and_adds_managed_tags() {
        let checked = check(None, inputs()).unwrap();
        let name = checked.log_group_name.clone().unwrap();
        assert!(name.starts_with("/securepipeline/app-build-"), "{name}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        // The name is kept on later checks.
        let again = check(Some(&checked), inputs()).unwrap();
        assert_eq!(again.log_group_name, checked.log_group_name);
    }

    #[test]
    fn rejects_retention_cloudwatch_does_not_accept() {
        let failures = check(
            None,
            LogGroupInputs {
                retention_in_days: 10,
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "retentionInDays");
        assert!(failures[0].reason.contains("14"));
    }

    #[test]
    fn lives_in_a_region_with_a_key_from_there() {
        let key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let west = LogGroupInputs {
            region: Some("us-west-2".into()),
            kms_key_arn: key.into(),
            ..inputs()
        };
        assert_eq!(
            check(None, west.clone()).unwrap().region.as_deref(),
            Some("us-west-2")
        );
        let failures = check(
            None,
            LogGroupInputs {
                region: Some("eu-west-1".into()),
                ..west.clone()
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "kmsKeyArn");
        assert!(
            failures[0].reason.contains("use a key in eu-west-1"),
            "{}",
            failures[0].reason
        );
        let failures = check(
            None,
            LogGroupInputs {
                region: Some("west".into()),
                ..west
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "region");
    }

    #[test]
    fn rejects_a_key_that_is_not_a_kms_key() {
        let failures = check(
            None,
            LogGroupInputs {
                kms_key_arn: "alias/aws/logs".into(),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "kmsKeyArn");
    }
}
