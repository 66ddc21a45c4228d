//! `securepipeline:aws:LogGroup`: a CloudWatch Logs group with retention
//! and KMS encryption, created before the CodeBuild project that writes to
//! it, so no log group is ever auto-created with infinite retention.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::LogGroup as AwsLogGroup;
use serde::{Deserialize, Serialize};

use super::common::check_kms_key_arn;
use crate::aws::arn::{is_region, Arn};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Transient};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

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
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName = AutoName {
        product_prefix: "/securepipeline/",
        ..AutoName::new(
            "logGroupName",
            &naming::LOG_GROUP,
            "log group",
            NameScope::Region,
        )
    };
    const PLACEMENT: Placement = Placement::Regional;

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        failures.extend(check_retention("retentionInDays", news.retention_in_days));
        failures.extend(check_kms_key_arn(ctx, "kmsKeyArn", &news.kms_key_arn));
        failures.extend(check_region_and_key(
            ctx,
            news.region.as_deref(),
            &news.kms_key_arn,
        ));
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let logs = &ctx.clients().logs;
        let name = ctx.name()?;
        // The key policy granting CloudWatch Logs may still be propagating.
        let propagation = [
            Transient::Propagation {
                code: "AccessDeniedException",
                message_contains: "KMS",
            },
            Transient::Propagation {
                code: "InvalidParameterException",
                message_contains: "KMS",
            },
        ];
        let tags = token.mark(&inputs.tags);
        ctx.create_once(
            format!("creating log group {name}"),
            name,
            &propagation,
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
            || async {
                let tags = Self::read_tags(ctx, name).await?;
                Ok(tags.filter(|tags| token.is_on(tags)).map(drop))
            },
        )
        .await?;
        let arn = ctx.arns().log_group(name);
        Ok((name.to_string(), LogGroupOutputs { arn }))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        set_retention(ctx, id, inputs.retention_in_days).await
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let Some(live) = find(ctx, id).await? else {
            return Ok(None);
        };
        let mut live_inputs = inputs.clone();
        live_inputs.log_group_name = Some(id.to_string());
        // Retention removed in the console reads as 0, which check rejects
        // and the next update restores.
        live_inputs.retention_in_days = live.retention_in_days().map_or(0, |d| d.max(0) as u32);
        live_inputs.kms_key_arn = live.kms_key_id().unwrap_or_default().to_string();
        let arn = ctx.arns().log_group(id);
        Ok(Some((live_inputs, LogGroupOutputs { arn })))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        if olds.retention_in_days != news.retention_in_days {
            set_retention(ctx, id, news.retention_in_days).await?;
        }
        if olds.kms_key_arn != news.kms_key_arn {
            let logs = &ctx.clients().logs;
            ctx.call(format!("encrypting log group {id}"), || {
                logs.associate_kms_key()
                    .log_group_name(id)
                    .kms_key_id(&news.kms_key_arn)
                    .send()
            })
            .await?;
        }
        Ok(outputs.clone())
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        let logs = &ctx.clients().logs;
        ctx.delete(
            format!("deleting log group {id}"),
            &["ResourceNotFoundException"],
            || logs.delete_log_group().log_group_name(id).send(),
        )
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let logs = &ctx.clients().logs;
        let arn = ctx.arns().log_group(id);
        let listed = ctx
            .find(
                format!("reading tags of log group {id}"),
                &["ResourceNotFoundException"],
                || logs.list_tags_for_resource().resource_arn(&arn).send(),
            )
            .await?;
        Ok(listed.map(|listed| listed.tags.unwrap_or_default().into_iter().collect()))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let logs = &ctx.clients().logs;
        let arn = ctx.arns().log_group(id);
        let arn = &arn;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging log group {id}"), move || {
                        logs.untag_resource()
                            .resource_arn(arn)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |set| {
                    ctx.call(format!("tagging log group {id}"), move || {
                        logs.tag_resource()
                            .resource_arn(arn)
                            .set_tags(Some(set.clone().into_iter().collect()))
                            .send()
                    })
                },
            )
            .await?;
        Ok(())
    }
}

async fn set_retention(ctx: &Op<'_>, name: &str, days: u32) -> Result<(), ResourceError> {
    let logs = &ctx.clients().logs;
    ctx.call(format!("setting retention of log group {name}"), || {
        logs.put_retention_policy()
            .log_group_name(name)
            .retention_in_days(days as i32)
            .send()
    })
    .await?;
    Ok(())
}

async fn find(ctx: &Op<'_>, name: &str) -> Result<Option<AwsLogGroup>, ResourceError> {
    let logs = &ctx.clients().logs;
    let groups = ctx
        .call(format!("reading log group {name}"), || {
            logs.describe_log_groups()
                .log_group_name_prefix(name)
                .send()
        })
        .await?;
    Ok(groups
        .log_groups
        .unwrap_or_default()
        .into_iter()
        .find(|group| group.log_group_name() == Some(name)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resource::Lifecycle;
    use crate::tags;

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
