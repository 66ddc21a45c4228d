//! A small client of the engine's ResourceMonitor, used by Construct to
//! register the component, its children and its outputs.

use std::collections::{BTreeMap, BTreeSet};

use tonic::transport::Channel;

use super::value::{decode_struct, encode_struct, PropertyMap};
use super::MAX_MESSAGE_SIZE;
use crate::proto::pulumirpc::{
    self, register_resource_request::PropertyDependencies as RequestPropertyDependencies,
    resource_monitor_client::ResourceMonitorClient,
};

/// A connection to the engine's resource monitor for one Construct call.
#[derive(Clone)]
pub struct Monitor {
    client: ResourceMonitorClient<Channel>,
}

/// Options that apply to every child: which provider serves it and where
/// the engine finds that provider's plugin.
#[derive(Debug, Clone, Default)]
pub struct ChildDefaults {
    pub version: String,
    pub plugin_download_url: String,
    /// The provider reference custom children use, when the component was
    /// given an explicit provider for this package.
    pub provider: Option<String>,
    /// Provider references by package, passed down from the component.
    pub providers: BTreeMap<String, String>,
}

/// A resource to register.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub type_token: String,
    pub name: String,
    pub parent: String,
    pub custom: bool,
    pub inputs: PropertyMap,
    /// Resources this one must be created after (and deleted before).
    pub dependencies: BTreeSet<String>,
    /// Per input, the resources its value came from.
    pub property_dependencies: BTreeMap<String, BTreeSet<String>>,
    /// Outputs to store as secrets whatever their inputs were.
    pub additional_secret_outputs: Vec<String>,
    /// Delete the old resource before creating its replacement (names that
    /// must stay unique, such as aliases).
    pub delete_before_replace: bool,
    /// The options a user set on the component that its children follow.
    pub options: ResourceOptions,
}

/// Resource options as the engine takes them; `None` leaves the engine's
/// default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceOptions {
    pub protect: Option<bool>,
    pub retain_on_delete: Option<bool>,
    /// The URN of a resource whose deletion deletes this one.
    pub deleted_with: String,
    pub custom_timeouts: Option<CustomTimeouts>,
    /// Input paths whose changes the engine ignores.
    pub ignore_changes: Vec<String>,
    /// Earlier identities of this resource.
    pub aliases: Vec<pulumirpc::Alias>,
}

/// Per-operation time limits, as duration strings (`5m`, `1h30m`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomTimeouts {
    pub create: String,
    pub update: String,
    pub delete: String,
}

/// The engine's answer: the resource's URN, id and current outputs.
#[derive(Debug, Clone)]
pub struct Registered {
    pub urn: String,
    pub id: String,
    pub outputs: PropertyMap,
}

impl Monitor {
    pub async fn connect(endpoint: &str) -> Result<Self, tonic::Status> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
            .map_err(|err| {
                tonic::Status::invalid_argument(format!("monitor endpoint `{endpoint}`: {err}"))
            })?
            .connect()
            .await
            .map_err(|err| {
                tonic::Status::unavailable(format!("cannot reach the resource monitor: {err}"))
            })?;
        let client = ResourceMonitorClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Ok(Self { client })
    }

    /// Registers a resource and waits for the engine to create, update or
    /// keep it (for custom resources the engine calls back into this
    /// provider meanwhile).
    pub async fn register(
        &self,
        registration: Registration,
        defaults: &ChildDefaults,
    ) -> Result<Registered, tonic::Status> {
        let property_dependencies = registration
            .property_dependencies
            .into_iter()
            .map(|(key, urns)| {
                (
                    key,
                    RequestPropertyDependencies {
                        urns: urns.into_iter().collect(),
                    },
                )
            })
            .collect();
        let custom = registration.custom;
        let options = registration.options;
        let request = pulumirpc::RegisterResourceRequest {
            r#type: registration.type_token,
            name: registration.name,
            parent: registration.parent,
            custom,
            object: Some(encode_struct(&registration.inputs)),
            dependencies: registration.dependencies.into_iter().collect(),
            property_dependencies,
            delete_before_replace: registration.delete_before_replace,
            delete_before_replace_defined: true,
            additional_secret_outputs: registration.additional_secret_outputs,
            accept_secrets: true,
            accept_resources: true,
            supports_partial_values: true,
            version: if custom {
                defaults.version.clone()
            } else {
                String::new()
            },
            plugin_download_url: if custom {
                defaults.plugin_download_url.clone()
            } else {
                String::new()
            },
            provider: if custom {
                defaults.provider.clone().unwrap_or_default()
            } else {
                String::new()
            },
            providers: if custom {
                Default::default()
            } else {
                defaults.providers.clone().into_iter().collect()
            },
            protect: options.protect,
            retain_on_delete: options.retain_on_delete,
            deleted_with: options.deleted_with,
            custom_timeouts: options.custom_timeouts.map(|t| {
                pulumirpc::register_resource_request::CustomTimeouts {
                    create: t.create,
                    update: t.update,
                    delete: t.delete,
                }
            }),
            ignore_changes: options.ignore_changes,
            aliases: options.aliases,
            alias_specs: true,
            ..Default::default()
        };
        let response = self
            .client
            .clone()
            .register_resource(request)
            .await?
            .into_inner();
        let outputs = match &response.object {
            Some(object) => decode_struct(object).map_err(|err| {
                tonic::Status::internal(format!("engine returned bad outputs: {err}"))
            })?,
            None => PropertyMap::new(),
        };
        Ok(Registered {
            urn: response.urn,
            id: response.id,
            outputs,
        })
    }

    pub async fn register_outputs(
        &self,
        urn: &str,
        outputs: &PropertyMap,
    ) -> Result<(), tonic::Status> {
        self.client
            .clone()
            .register_resource_outputs(pulumirpc::RegisterResourceOutputsRequest {
                urn: urn.to_string(),
                outputs: Some(encode_struct(outputs)),
            })
            .await?;
        Ok(())
    }
}
