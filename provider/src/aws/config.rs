//! Provider configuration (`securepipeline:*` stack config) and how it
//! becomes an [`AwsContext`]. Credentials come only from the standard AWS
//! chain; there is deliberately no key field.

use std::collections::BTreeMap;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use super::arn::Arn;
use super::failure::AwsFailure;
use super::{AwsContext, Endpoints};
use crate::resource::{parse, CheckFailure};
use crate::tags;

/// The provider's configuration, set as `securepipeline:<key>` in stack config.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "Provider")]
pub struct ProviderConfig {
    /// The AWS region. Falls back to the standard AWS environment and profile
    /// chain (AWS_REGION, the profile's region).
    pub region: Option<String>,
    /// A shared-config profile to take credentials and region from.
    pub profile: Option<String>,
    /// A role the provider assumes before any call.
    pub assume_role: Option<AssumeRole>,
    /// Endpoint URLs by service name (or `default`), for emulators such as
    /// LocalStack or moto. The standard `AWS_ENDPOINT_URL*` variables work too.
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    /// Tags added to every taggable resource.
    #[serde(default)]
    pub default_tags: BTreeMap<String, String>,
}

/// A role to assume before any AWS call.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssumeRole {
    /// The role's ARN.
    pub role_arn: String,
    /// The session name. Default `pulumi-securepipeline`.
    pub session_name: Option<String>,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
}

impl ProviderConfig {
    /// Parses configuration from the engine. Object-valued keys may arrive
    /// JSON-encoded as strings; both forms are accepted.
    pub fn from_json(value: &Json) -> Result<Self, Vec<CheckFailure>> {
        let mut object = value.as_object().cloned().unwrap_or_default();
        for key in ["assumeRole", "endpoints", "defaultTags"] {
            if let Some(Json::String(text)) = object.get(key) {
                if let Ok(parsed) = serde_json::from_str::<Json>(text) {
                    object.insert(key.to_string(), parsed);
                }
            }
        }
        // Keys the engine adds for every provider, not ours to validate.
        object.remove("version");
        object.remove("pluginDownloadURL");
        let config: ProviderConfig = parse(&Json::Object(object)).map_err(|f| vec![f])?;
        let failures = config.validate();
        if failures.is_empty() {
            Ok(config)
        } else {
            Err(failures)
        }
    }

    fn validate(&self) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        if let Some(region) = &self.region {
            if !super::arn::is_region(region) {
                failures.push(CheckFailure::new(
                    "region",
                    format!("`{region}` is not an AWS region name; use one like `eu-west-1`"),
                ));
            }
        }
        if let Some(assume) = &self.assume_role {
            match assume.role_arn.parse::<Arn>() {
                Ok(arn) if arn.service == "iam" && arn.resource.starts_with("role/") => {}
                Ok(_) => failures.push(CheckFailure::new(
                    "assumeRole.roleArn",
                    "must be an IAM role ARN such as arn:aws:iam::123456789012:role/deployer",
                )),
                Err(reason) => failures.push(CheckFailure::new("assumeRole.roleArn", reason)),
            }
        }
        for (service, url) in &self.endpoints {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                failures.push(CheckFailure::new(
                    format!("endpoints.{service}"),
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
        }
        failures.extend(tags::validate("defaultTags", &self.default_tags));
        failures
    }

    /// Builds shared clients and learns the caller identity with one
    /// `sts:GetCallerIdentity`.
    pub async fn connect(&self) -> Result<AwsContext, ConnectError> {
        let endpoints = Endpoints(self.endpoints.clone());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(super::retry::sdk_retry_config())
            .timeout_config(super::retry::sdk_timeouts());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let mut sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(ConnectError::Config("no AWS region is configured: set `pulumi config set securepipeline:region <region>` or AWS_REGION".into()));
        };
        if let Some(assume) = &self.assume_role {
            let mut base = sdk.to_builder();
            if let Some(url) = endpoints.for_service(&["sts"]) {
                base = base.endpoint_url(url);
            }
            let mut provider = AssumeRoleProvider::builder(assume.role_arn.clone())
                .session_name(
                    assume
                        .session_name
                        .clone()
                        .unwrap_or_else(|| "pulumi-securepipeline".into()),
                )
                .configure(&base.build());
            if let Some(external_id) = &assume.external_id {
                provider = provider.external_id(external_id.clone());
            }
            let provider = provider.build().await;
            sdk = sdk
                .to_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        let clients = super::Clients::new(&sdk, &endpoints);
        let identity = clients.sts.get_caller_identity().send().await.map_err(|err| {
            ConnectError::Aws(
                AwsFailure::of("learning the AWS caller identity", &err).advise(
                    "provide credentials through the standard AWS chain: \
                     AWS_PROFILE or `securepipeline:profile`, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `aws sso login`, \
                     web identity or an instance role",
                ),
            )
        })?;
        let (Some(account), Some(caller_arn)) = (identity.account(), identity.arn()) else {
            return Err(ConnectError::Config(
                "sts:GetCallerIdentity returned no account or ARN".into(),
            ));
        };
        let partition = caller_arn
            .parse::<Arn>()
            .map(|arn| arn.partition)
            .map_err(|err| {
                ConnectError::Config(format!(
                    "sts:GetCallerIdentity returned an unexpected ARN: {err}"
                ))
            })?;
        Ok(AwsContext::new(
            sdk,
            endpoints,
            account.to_string(),
            partition,
            region,
            self.default_tags.clone(),
        ))
    }
}

/// Why the provider could not reach AWS as configured.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configuration does not say enough (no region).
    #[error("{0}")]
    Config(String),
    /// AWS refused, or could not be reached.
    #[error("{0}")]
    Aws(AwsFailure),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_typed_and_json_encoded_objects() {
        let config = ProviderConfig::from_json(&json!({
            "region": "eu-west-1",
            "endpoints": "{\"default\":\"http://127.0.0.1:4566\"}",
            "defaultTags": {"team": "platform"},
            "version": "0.1.0"
        }))
        .unwrap();
        assert_eq!(config.endpoints["default"], "http://127.0.0.1:4566");
        assert_eq!(config.default_tags["team"], "platform");
    }

    #[test]
    fn names_every_bad_key() {
        let failures = ProviderConfig::from_json(&json!({
            "region": "europe",
            "assumeRole": {"roleArn": "arn:aws:s3:::bucket"},
            "endpoints": {"s3": "localhost:4566"}
        }))
        .unwrap_err();
        let properties: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            properties,
            vec!["region", "assumeRole.roleArn", "endpoints.s3"]
        );
    }

    #[test]
    fn rejects_unknown_keys_such_as_access_keys() {
        let failures = ProviderConfig::from_json(&json!({"accessKey": "AKIA..."})).unwrap_err();
        assert!(failures[0].reason.contains("unknown field"));
    }
}
