//! AWS access shared by every resource kind: the caller identity learned
//! once at Configure, clients built once per region, retries and ARNs.

pub mod arn;
pub mod config;
pub mod failure;
pub mod retry;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;

pub use config::{ConnectError, ProviderConfig};

/// One client per service, all for one region.
#[derive(Clone)]
pub struct Clients {
    pub codebuild: aws_sdk_codebuild::Client,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub connections: aws_sdk_codestarconnections::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sts: aws_sdk_sts::Client,
}

/// Service endpoint overrides (emulators), keyed by service or `default`.
#[derive(Clone, Debug, Default)]
pub struct Endpoints(pub BTreeMap<String, String>);

impl Endpoints {
    /// The override for a service: its own entry, an alias, or `default`.
    pub fn for_service(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|name| self.0.get(*name))
            .or_else(|| self.0.get("default"))
            .map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Clients {
    pub fn new(sdk: &SdkConfig, endpoints: &Endpoints) -> Self {
        macro_rules! client {
            ($krate:ident, [$($name:literal),+]) => {{
                let mut builder = $krate::config::Builder::from(sdk);
                if let Some(url) = endpoints.for_service(&[$($name),+]) {
                    builder = builder.endpoint_url(url);
                }
                $krate::Client::from_conf(builder.build())
            }};
        }
        let s3 = {
            let mut builder = aws_sdk_s3::config::Builder::from(sdk);
            if let Some(url) = endpoints.for_service(&["s3"]) {
                // Emulators serve buckets by path, not by virtual host.
                builder = builder.endpoint_url(url).force_path_style(true);
            }
            aws_sdk_s3::Client::from_conf(builder.build())
        };
        Self {
            codebuild: client!(aws_sdk_codebuild, ["codebuild"]),
            codepipeline: client!(aws_sdk_codepipeline, ["codepipeline"]),
            connections: client!(
                aws_sdk_codestarconnections,
                [
                    "codestarconnections",
                    "codestar-connections",
                    "codeconnections"
                ]
            ),
            events: client!(aws_sdk_eventbridge, ["events", "eventbridge"]),
            iam: client!(aws_sdk_iam, ["iam"]),
            kms: client!(aws_sdk_kms, ["kms"]),
            logs: client!(aws_sdk_cloudwatchlogs, ["logs", "cloudwatchlogs"]),
            s3,
            sns: client!(aws_sdk_sns, ["sns"]),
            sts: client!(aws_sdk_sts, ["sts"]),
        }
    }
}

/// Everything a resource kind needs to reach AWS, learned at Configure.
pub struct AwsContext {
    pub account_id: String,
    pub partition: String,
    pub region: String,
    /// Tags the provider configuration adds to every taggable child.
    pub default_tags: BTreeMap<String, String>,
    sdk: SdkConfig,
    endpoints: Endpoints,
    home: Arc<Clients>,
    by_region: Mutex<HashMap<String, Arc<Clients>>>,
}

impl AwsContext {
    pub fn new(
        sdk: SdkConfig,
        endpoints: Endpoints,
        account_id: String,
        partition: String,
        region: String,
        default_tags: BTreeMap<String, String>,
    ) -> Self {
        let home = Arc::new(Clients::new(&sdk, &endpoints));
        Self {
            account_id,
            partition,
            region,
            default_tags,
            sdk,
            endpoints,
            home,
            by_region: Mutex::new(HashMap::new()),
        }
    }

    /// Clients for the provider's own region.
    pub fn clients(&self) -> &Clients {
        &self.home
    }

    /// Clients for another region (cross-region pipelines), built once.
    pub fn clients_in(&self, region: &str) -> Arc<Clients> {
        if region == self.region {
            return Arc::clone(&self.home);
        }
        let mut cache = match self.by_region.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        let clients = cache.entry(region.to_string()).or_insert_with(|| {
            let sdk = self
                .sdk
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build();
            Arc::new(Clients::new(&sdk, &self.endpoints))
        });
        Arc::clone(clients)
    }

    /// The ARN builder for this account and partition.
    pub fn arns(&self) -> arn::Arns<'_> {
        arn::Arns {
            partition: &self.partition,
            account: &self.account_id,
            region: &self.region,
        }
    }
}
