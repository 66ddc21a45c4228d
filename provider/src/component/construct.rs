//! Construct: validates SecurePipeline's inputs, plans the whole graph of
//! its children, and registers that graph through the engine (which calls
//! back into this provider to create each child) in dependency order,
//! independent children in parallel. Nothing is kept in memory between
//! calls: destroy and refresh never call Construct.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::Status;

use super::graph::{self, Context, SOURCE};
use super::{brought, plan, validate};
use crate::aws::AwsContext;
use crate::engine_log::EngineLog;
use crate::proto::pulumirpc::{alias, Alias, ConstructRequest, ConstructResponse};
use crate::protocol::monitor::{
    ChildDefaults, CustomTimeouts, Monitor, Registered, Registration, ResourceOptions,
};
use crate::protocol::registrar::{output_value, properties, text_output, Registrar};
use crate::protocol::secrets::SecretValues;
use crate::protocol::server::parse_urn;
use crate::protocol::value::{decode_struct, encode_struct, PropertyMap};
use crate::resource::{CheckContext, CheckFailure, OpContext};
use crate::schema::{COMPONENT_TYPE, PACKAGE, PLUGIN_DOWNLOAD_URL};

/// All check failures as one error the engine shows at preview, with no
/// secret echoed.
fn invalid(name: &str, failures: Vec<CheckFailure>, secrets: &SecretValues) -> Status {
    let lines: Vec<String> = failures
        .iter()
        .map(|f| {
            if f.property.is_empty() {
                format!("  - {}", f.reason)
            } else {
                format!("  - {}: {}", f.property, f.reason)
            }
        })
        .collect();
    Status::invalid_argument(secrets.redact(&format!(
        "SecurePipeline `{name}` has invalid inputs:\n{}",
        lines.join("\n")
    )))
}

/// The resource options the engine passed with the Construct call.
fn component_options(request: &ConstructRequest) -> ResourceOptions {
    ResourceOptions {
        protect: request.protect,
        retain_on_delete: request.retain_on_delete,
        deleted_with: request.deleted_with.clone(),
        custom_timeouts: request.custom_timeouts.as_ref().map(|t| CustomTimeouts {
            create: t.create.clone(),
            update: t.update.clone(),
            delete: t.delete.clone(),
        }),
        ignore_changes: request.ignore_changes.clone(),
        aliases: request.aliases.clone(),
    }
}

/// The name the component's children derive their physical names from:
/// the name in its first alias (an earlier URN, or a spec naming the
/// earlier name) when it has one.
fn identity_name<'a>(name: &'a str, aliases: &'a [Alias]) -> &'a str {
    let earlier = aliases.first().and_then(|alias| match &alias.alias {
        Some(alias::Alias::Urn(urn)) => Some(parse_urn(urn).1),
        Some(alias::Alias::Spec(spec)) => Some(spec.name.as_str()),
        None => None,
    });
    earlier
        .filter(|earlier| !earlier.is_empty())
        .unwrap_or(name)
}

pub async fn construct(
    request: ConstructRequest,
    aws: Option<Arc<AwsContext>>,
    version: &str,
    log: &EngineLog,
) -> Result<ConstructResponse, Status> {
    let name = request.name.clone();
    let inputs = match &request.inputs {
        Some(inputs) => {
            decode_struct(inputs).map_err(|err| Status::invalid_argument(err.to_string()))?
        }
        None => PropertyMap::new(),
    };
    let check = CheckContext {
        name: &name,
        random_seed: &[],
        aws: aws.as_deref(),
    };
    let secrets = SecretValues::of(&inputs);
    let (args, typed) =
        validate::check(&check, &inputs).map_err(|failures| invalid(&name, failures, &secrets))?;
    let aws = aws.ok_or_else(|| {
        Status::failed_precondition(
            "the securepipeline provider must be configured before a SecurePipeline is constructed",
        )
    })?;
    // A key or connection the user brings is checked before anything is
    // registered, so that a preview already fails on it.
    let early = OpContext {
        aws: &aws,
        urn: "",
        log,
    };
    let failures = brought::check(&early, &args, &typed.secret_paths).await;
    if !failures.is_empty() {
        return Err(invalid(&name, failures, &secrets));
    }
    let options = component_options(&request);
    let plan = graph::plan(
        &args,
        &Context {
            name: &name,
            identity: identity_name(&name, &request.aliases),
            project: &request.project,
            stack: &request.stack,
            arns: aws.arns(),
            options: &options,
        },
    )
    .map_err(|err| Status::internal(format!("SecurePipeline `{name}`'s children: {err}")))?;

    let monitor = Monitor::connect(&request.monitor_endpoint).await?;
    let providers: BTreeMap<String, String> = request.providers.clone().into_iter().collect();
    let defaults = ChildDefaults {
        version: version.to_string(),
        plugin_download_url: PLUGIN_DOWNLOAD_URL.to_string(),
        provider: providers.get(PACKAGE).cloned(),
        providers,
    };
    let component = monitor
        .register(
            Registration {
                type_token: COMPONENT_TYPE.to_string(),
                name: name.clone(),
                parent: request.parent.clone(),
                custom: false,
                dependencies: request.dependencies.iter().cloned().collect(),
                options,
                ..Default::default()
            },
            &defaults,
        )
        .await?;

    for note in plan::defaulted_notes(&args) {
        log.info(&component.urn, &note);
    }

    let registrar = Registrar {
        registry: &monitor,
        defaults: &defaults,
        parent: &component.urn,
        secrets: &secrets,
    };
    let children = registrar
        .register(&plan.children, |purpose, child| {
            if purpose == SOURCE {
                warn_if_pending(log, child, &args.source.repository);
            }
        })
        .await?;

    let outputs = plan
        .outputs
        .resolve(&|output| output_value(&children, output))
        .map_err(|err| Status::internal(format!("SecurePipeline `{name}`'s outputs: {err}")))?;
    let output_map = properties(&outputs, &secrets.tainted_keys(&outputs));
    monitor
        .register_outputs(&component.urn, &output_map)
        .await?;
    Ok(ConstructResponse {
        urn: component.urn,
        state: Some(encode_struct(&output_map)),
        ..Default::default()
    })
}

/// A connection the component created is PENDING until a person activates
/// it; until then the pipeline cannot read the repository.
fn warn_if_pending(log: &EngineLog, connection: &Registered, repository: &str) {
    if text_output(connection, "status") != "PENDING" {
        return;
    }
    log.warn(
        &connection.urn,
        &format!(
            "the source connection {} is PENDING: a person must activate it once in the console ({}) before the pipeline can read {repository}",
            text_output(connection, "arn"),
            text_output(connection, "activationUrl"),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urn_alias(urn: &str) -> Alias {
        Alias {
            alias: Some(alias::Alias::Urn(urn.into())),
        }
    }

    #[test]
    fn children_keep_the_name_of_the_first_alias() {
        let earlier = "urn:pulumi:dev::app::securepipeline:index:SecurePipeline::web";
        assert_eq!(identity_name("site", &[urn_alias(earlier)]), "web");
        let spec = Alias {
            alias: Some(alias::Alias::Spec(spec_named("old"))),
        };
        assert_eq!(identity_name("site", &[spec]), "old");
        assert_eq!(identity_name("site", &[]), "site");
    }

    fn spec_named(name: &str) -> alias::Spec {
        alias::Spec {
            name: name.into(),
            ..Default::default()
        }
    }
}
