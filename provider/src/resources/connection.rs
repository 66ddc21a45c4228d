//! `securepipeline:aws:Connection`: the CodeConnections connection to the
//! source host, created (pending until activated) or adopted.
//!
//! A created connection starts PENDING: AWS requires a person to finish the
//! handshake with the source host once in the console, so the kind reports
//! the status and where to activate it. An adopted connection is validated
//! and proven to exist, but never changed or deleted: it is not ours.

use async_trait::async_trait;
use aws_sdk_codestarconnections::types::{Connection as AwsConnection, ProviderType, Tag};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{check_exact_arn, from_sdk_tags, sdk_tags};
use crate::aws::failure::AwsFailure;
use crate::aws::retry::{once, Created};
use crate::naming;
use crate::resource::{
    AutoName, CheckContext, CreateToken, CustomResource, Failures, NameScope, Op, OpContext,
    Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

/// Repository hosts a connection can reach.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SourceProvider {
    GitHub,
    GitHubEnterpriseServer,
    Bitbucket,
    GitLab,
    GitLabSelfManaged,
}

const CONNECTION_SERVICES: &[&str] = &["codestar-connections", "codeconnections"];
const CONNECTION_EXAMPLE: &str =
    "arn:aws:codeconnections:us-east-1:123456789012:connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
const HOST_EXAMPLE: &str = "arn:aws:codeconnections:us-east-1:123456789012:host/my-ghes-0a1b2c3d";

pub struct Connection;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInputs {
    pub name_prefix: String,
    /// Chosen by `check` (32 characters at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_name: Option<String>,
    pub provider_type: SourceProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_arn: Option<String>,
    /// Adopt this existing connection instead of creating one; it is
    /// validated and never deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_arn: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOutputs {
    pub arn: String,
    /// PENDING, AVAILABLE or ERROR.
    pub status: String,
    /// Where a person activates a pending connection.
    pub activation_url: String,
}

fn needs_host(provider: SourceProvider) -> bool {
    matches!(
        provider,
        SourceProvider::GitHubEnterpriseServer | SourceProvider::GitLabSelfManaged
    )
}

fn provider_type(provider: SourceProvider) -> ProviderType {
    match provider {
        SourceProvider::GitHub => ProviderType::Github,
        SourceProvider::GitHubEnterpriseServer => ProviderType::GithubEnterpriseServer,
        SourceProvider::Bitbucket => ProviderType::Bitbucket,
        SourceProvider::GitLab => ProviderType::Gitlab,
        SourceProvider::GitLabSelfManaged => ProviderType::GitlabSelfManaged,
    }
}

fn source_provider(provider: &ProviderType) -> Option<SourceProvider> {
    match provider {
        ProviderType::Github => Some(SourceProvider::GitHub),
        ProviderType::GithubEnterpriseServer => Some(SourceProvider::GitHubEnterpriseServer),
        ProviderType::Bitbucket => Some(SourceProvider::Bitbucket),
        ProviderType::Gitlab => Some(SourceProvider::GitLab),
        ProviderType::GitlabSelfManaged => Some(SourceProvider::GitLabSelfManaged),
        _ => None,
    }
}

/// The console page where pending connections are activated.
fn activation_url(partition: &str, region: &str) -> String {
    let console = match partition {
        "aws-cn" => "console.amazonaws.cn",
        "aws-us-gov" => "console.amazonaws-us-gov.com",
        _ => "console.aws.amazon.com",
    };
    format!("https://{region}.{console}/codesuite/settings/connections?region={region}")
}

/// The outputs of connection `arn`, its status as `live` reports it.
fn outputs(ctx: &Op<'_>, arn: &str, live: Option<&AwsConnection>) -> ConnectionOutputs {
    ConnectionOutputs {
        arn: arn.to_string(),
        status: live
            .and_then(AwsConnection::connection_status)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        activation_url: activation_url(&ctx.aws.partition, &ctx.region),
    }
}

fn connection_tags(tags: &Tags) -> Result<Vec<Tag>, ResourceError> {
    sdk_tags(tags, |key, value| {
        Tag::builder().key(key).value(value).build()
    })
}

/// CodeConnections' answer for a connection that does not exist.
const GONE: &[&str] = &["ResourceNotFoundException"];

#[async_trait]
impl CustomResource for Connection {
    const TYPE: &'static str = "securepipeline:aws:Connection";
    type Inputs = ConnectionInputs;
    type Outputs = ConnectionOutputs;
    const OUTPUT_KEYS: &'static [&'static str] = &["arn", "status", "activationUrl"];
    // A connection's provider and host are fixed once created.
    const REPLACE_KEYS: &'static [&'static str] = &["providerType", "hostArn", "existingArn"];
    const NAME: AutoName = AutoName::new(
        "connectionName",
        &naming::CONNECTION,
        "connection",
        NameScope::Region,
    );
    const PLACEMENT: Placement = Placement::Regional;
    const ADOPTS: Option<&'static str> = Some("existingArn");

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        if let Some(existing) = &news.existing_arn {
            failures.extend(check_exact_arn(
                ctx,
                "existingArn",
                existing,
                CONNECTION_SERVICES,
                "connection/",
                CONNECTION_EXAMPLE,
                true,
            ));
            if news.host_arn.is_some() {
                failures.push(
                    "hostArn",
                    "an existing connection already names its host; remove hostArn or existingArn",
                );
            }
            return;
        }
        match (&news.host_arn, needs_host(news.provider_type)) {
            (Some(host), true) => failures.extend(check_exact_arn(
                ctx,
                "hostArn",
                host,
                CONNECTION_SERVICES,
                "host/",
                HOST_EXAMPLE,
                true,
            )),
            (Some(_), false) => failures.push(
                "hostArn",
                format!(
                    "{:?} connections do not use a host; only GitHubEnterpriseServer and GitLabSelfManaged do; remove hostArn",
                    news.provider_type
                ),
            ),
            (None, true) => failures.push(
                "hostArn",
                format!(
                    "a {:?} connection needs the ARN of its host (e.g. {HOST_EXAMPLE}); set hostArn, or adopt a connection with existingArn",
                    news.provider_type
                ),
            ),
            (None, false) => {}
        }
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        _token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        if let Some(existing) = &inputs.existing_arn {
            let live = get(ctx, existing)
                .await?
                .ok_or_else(|| ResourceError::Failed(missing(ctx, existing)))?;
            return Ok((existing.clone(), outputs(ctx, existing, Some(&live))));
        }

        let connections = &ctx.clients().connections;
        let name = ctx.name()?;
        // An interrupted earlier attempt may have created it already: the
        // name carries this resource's random suffix, so a match is ours.
        let arn = match find(ctx, inputs, name).await? {
            Some(arn) => arn,
            None => {
                let tags = connection_tags(&inputs.tags)?;
                // AWS takes the provider type or the host (which has one), not both.
                let provider = inputs
                    .host_arn
                    .is_none()
                    .then(|| provider_type(inputs.provider_type));
                // Connections are not idempotent: after a lost answer the
                // name (with this resource's random suffix) finds ours.
                let created = ctx
                    .create_once(
                        format!("creating connection {name}"),
                        name,
                        &[],
                        &[],
                        || {
                            connections
                                .create_connection()
                                .connection_name(name)
                                .set_provider_type(provider.clone())
                                .set_host_arn(inputs.host_arn.clone())
                                .set_tags(Some(tags.clone()))
                                .customize()
                                .config_override(
                                    aws_sdk_codestarconnections::config::Builder::default()
                                        .retry_config(once()),
                                )
                                .send()
                        },
                        || find(ctx, inputs, name),
                    )
                    .await?;
                match created {
                    Created::New(output) => output.connection_arn().to_string(),
                    Created::Found(arn) => arn,
                }
            }
        };
        Ok((arn.clone(), outputs(ctx, &arn, None)))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        let live = get(ctx, id).await?.ok_or_else(|| {
            ResourceError::Failed(format!(
                "connection {id} vanished right after it was created"
            ))
        })?;
        outputs.status = self::outputs(ctx, id, Some(&live)).status;
        Ok(())
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let Some(live) = get(ctx, id).await? else {
            return Ok(None);
        };
        let outputs = outputs(ctx, id, Some(&live));
        // An adopted connection is not managed: its inputs stay as given.
        if inputs.existing_arn.is_some() {
            return Ok(Some((inputs.clone(), outputs)));
        }
        // A connection made through a host may report only the host.
        let provider = match live.provider_type() {
            None => inputs.provider_type,
            Some(live_provider) => source_provider(live_provider).ok_or_else(|| {
                ResourceError::Failed(format!(
                    "reading connection {id}: provider type {} is not one SecurePipeline supports",
                    live_provider.as_str()
                ))
            })?,
        };
        let mut live_inputs = inputs.clone();
        live_inputs.connection_name = live.connection_name().map(str::to_string);
        live_inputs.provider_type = provider;
        live_inputs.host_arn = live
            .host_arn()
            .filter(|h| !h.is_empty())
            .map(str::to_string);
        Ok(Some((live_inputs, outputs)))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        _olds: &Self::Inputs,
        _news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        // Activation happens outside Pulumi; report the status as it is now.
        let status = match get(ctx, id).await? {
            Some(live) => self::outputs(ctx, id, Some(&live)).status,
            None => outputs.status.clone(),
        };
        Ok(ConnectionOutputs {
            status,
            ..outputs.clone()
        })
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        // An adopted connection belongs to someone else: forget it, keep it.
        if inputs.existing_arn.is_some() {
            return Ok(());
        }
        let connections = &ctx.clients().connections;
        ctx.delete(format!("deleting connection {id}"), GONE, || {
            connections.delete_connection().connection_arn(id).send()
        })
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let connections = &ctx.clients().connections;
        let listed = ctx
            .find(format!("reading tags of connection {id}"), GONE, || {
                connections.list_tags_for_resource().resource_arn(id).send()
            })
            .await?;
        Ok(listed.map(|listed| from_sdk_tags(listed.tags(), |tag| (tag.key(), tag.value()))))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let connections = &ctx.clients().connections;
        let set = connection_tags(&change.set)?;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging connection {id}"), move || {
                        connections
                            .untag_resource()
                            .resource_arn(id)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |_| {
                    ctx.call(format!("tagging connection {id}"), || {
                        connections
                            .tag_resource()
                            .resource_arn(id)
                            .set_tags(Some(set.clone()))
                            .send()
                    })
                },
            )
            .await?;
        Ok(())
    }
}

/// Checks that a connection the user brings exists where the pipeline runs;
/// the error says what to do.
pub async fn verify_existing(ctx: &OpContext<'_>, arn: &str) -> Result<(), String> {
    let ctx = Op::new(ctx, None, None);
    match get(&ctx, arn).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(missing(&ctx, arn)),
        Err(failure) => Err(failure.to_string()),
    }
}

fn missing(ctx: &Op<'_>, arn: &str) -> String {
    format!(
        "connection `{arn}` does not exist in account {}, region {}; create it there (and activate it in the console), or remove connectionArn to have one created",
        ctx.aws.account_id, ctx.region
    )
}

/// The live connection; `None` when it does not exist.
async fn get(ctx: &Op<'_>, arn: &str) -> Result<Option<AwsConnection>, AwsFailure> {
    let connections = &ctx.clients().connections;
    let found = ctx
        .find(format!("reading connection {arn}"), GONE, || {
            connections.get_connection().connection_arn(arn).send()
        })
        .await?;
    Ok(found.and_then(|found| found.connection))
}

/// The ARN of a connection with exactly this name, provider and host.
async fn find(
    ctx: &Op<'_>,
    inputs: &ConnectionInputs,
    name: &str,
) -> Result<Option<String>, AwsFailure> {
    let connections = &ctx.clients().connections;
    let pages = ctx
        .call("listing connections", || {
            // Host-based connections are found by their host, others by provider.
            connections
                .list_connections()
                .set_provider_type_filter(
                    inputs
                        .host_arn
                        .is_none()
                        .then(|| provider_type(inputs.provider_type)),
                )
                .set_host_arn_filter(inputs.host_arn.clone())
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(pages
        .iter()
        .flat_map(|page| page.connections())
        .find(|c| {
            c.connection_name() == Some(name)
                && c.host_arn().filter(|h| !h.is_empty()) == inputs.host_arn.as_deref()
        })
        .and_then(|c| c.connection_arn().map(str::to_string)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::{AwsContext, Endpoints};
    use crate::resource::{CheckFailure, Lifecycle};
    use crate::tags;

    const CONNECTION: &str = "arn:aws:codestar-connections:us-east-1:123456789012:connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
    const HOST: &str = "arn:aws:codeconnections:us-east-1:123456789012:host/ghes-0a1b2c3d";

    fn aws() -> AwsContext {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        AwsContext::new(
            sdk,
            Endpoints::default(),
            "123456789012".into(),
            "aws".into(),
            "us-east-1".into(),
            Tags::new(),
        )
    }

    pub(crate) fn inputs() -> ConnectionInputs {
        ConnectionInputs {
            name_prefix: "my-very-long-application-name-source".into(),
            connection_name: None,
            provider_type: SourceProvider::GitHub,
            host_arn: None,
            existing_arn: None,
            tags: Tags::new(),
        }
    }

    fn check_with(
        aws: Option<&AwsContext>,
        olds: Option<&ConnectionInputs>,
        news: ConnectionInputs,
    ) -> Result<ConnectionInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "source",
            random_seed: b"seed",
            aws,
        };
        Connection::check(&ctx, olds, news)
    }

    fn failed_properties(news: ConnectionInputs) -> Vec<String> {
        check_with(Some(&aws()), None, news)
            .unwrap_err()
            .into_iter()
            .map(|f| f.property)
            .collect()
    }

    #[test]
    fn chooses_a_short_name_keeps_it_and_adds_managed_tags() {
        let checked = check_with(None, None, inputs()).unwrap();
        let name = checked.connection_name.clone().unwrap();
        assert!(name.len() <= 32, "{name}");
        assert!(name.starts_with("my-very-long-"), "{name}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let again = check_with(None, Some(&checked), inputs()).unwrap();
        assert_eq!(again.connection_name, checked.connection_name);
    }

    #[test]
    fn self_hosted_providers_need_a_host_and_others_refuse_one() {
        for provider in [
            SourceProvider::GitHubEnterpriseServer,
            SourceProvider::GitLabSelfManaged,
        ] {
            let failures = check_with(
                None,
                None,
                ConnectionInputs {
                    provider_type: provider,
                    ..inputs()
                },
            )
            .unwrap_err();
            assert_eq!(failures[0].property, "hostArn");
            assert!(failures[0].reason.contains("set hostArn"));
            let with_host = ConnectionInputs {
                provider_type: provider,
                host_arn: Some(HOST.into()),
                ..inputs()
            };
            assert!(check_with(Some(&aws()), None, with_host).is_ok());
        }
        for provider in [
            SourceProvider::GitHub,
            SourceProvider::Bitbucket,
            SourceProvider::GitLab,
        ] {
            let failures = failed_properties(ConnectionInputs {
                provider_type: provider,
                host_arn: Some(HOST.into()),
                ..inputs()
            });
            assert_eq!(failures, vec!["hostArn"]);
        }
    }

    #[test]
    fn rejects_a_host_in_another_region_or_of_another_service() {
        let host = |arn: &str| ConnectionInputs {
            provider_type: SourceProvider::GitHubEnterpriseServer,
            host_arn: Some(arn.into()),
            ..inputs()
        };
        assert_eq!(
            failed_properties(host(
                "arn:aws:codeconnections:eu-west-1:123456789012:host/h-1"
            )),
            vec!["hostArn"]
        );
        assert_eq!(
            failed_properties(host("arn:aws:codebuild:us-east-1:123456789012:host/h-1")),
            vec!["hostArn"]
        );
    }

    #[test]
    fn adopts_only_a_connection_in_the_callers_partition_account_and_region() {
        let adopt = |arn: &str| ConnectionInputs {
            existing_arn: Some(arn.into()),
            ..inputs()
        };
        let checked = check_with(Some(&aws()), None, adopt(CONNECTION)).unwrap();
        assert_eq!(checked.connection_name, None);
        assert!(check_with(
            Some(&aws()),
            None,
            adopt(&CONNECTION.replace("codestar-connections", "codeconnections"))
        )
        .is_ok());
        for bad in [
            CONNECTION.replace("123456789012", "210987654321"),
            CONNECTION.replace("us-east-1", "eu-west-1"),
            CONNECTION.replace("arn:aws:", "arn:aws-cn:"),
            CONNECTION.replace("connection/", "host/"),
            CONNECTION.replace("codestar-connections", "codecommit"),
            "github.com/org/repo".to_string(),
        ] {
            let failures = check_with(Some(&aws()), None, adopt(&bad)).unwrap_err();
            assert_eq!(failures[0].property, "existingArn", "{bad}");
        }
        let failures = failed_properties(ConnectionInputs {
            host_arn: Some(HOST.into()),
            ..adopt(CONNECTION)
        });
        assert_eq!(failures, vec!["hostArn"]);
    }

    #[test]
    fn maps_every_provider_to_the_api_and_back() {
        for provider in [
            SourceProvider::GitHub,
            SourceProvider::GitHubEnterpriseServer,
            SourceProvider::Bitbucket,
            SourceProvider::GitLab,
            SourceProvider::GitLabSelfManaged,
        ] {
            let api = provider_type(provider);
            assert_eq!(api.as_str(), format!("{provider:?}"));
            assert_eq!(source_provider(&api), Some(provider));
        }
    }

    #[test]
    fn activation_url_points_at_the_partitions_console() {
        assert_eq!(
            activation_url("aws", "eu-west-1"),
            "https://eu-west-1.console.aws.amazon.com/codesuite/settings/connections?region=eu-west-1"
        );
        assert_eq!(
            activation_url("aws-cn", "cn-north-1"),
            "https://cn-north-1.console.amazonaws.cn/codesuite/settings/connections?region=cn-north-1"
        );
        assert_eq!(
            activation_url("aws-us-gov", "us-gov-west-1"),
            "https://us-gov-west-1.console.amazonaws-us-gov.com/codesuite/settings/connections?region=us-gov-west-1"
        );
    }
}
