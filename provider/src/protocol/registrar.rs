//! Registers a [`Graph`] through the engine's resource monitor in
//! dependency order, with as much parallelism as the dependencies allow: a
//! resource goes as soon as every resource it depends on is registered, and
//! its references to their outputs are resolved from what the engine
//! returned for them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value as Json;
use tonic::Status;

use super::graph::{Declaration, Graph, OutputRef};
use super::json::{json_to_property, UNKNOWN};
use super::monitor::{ChildDefaults, Monitor, Registered, Registration};
use super::secrets::SecretValues;
use super::value::{PropertyMap, PropertyValue};

/// What registers one resource: the engine's monitor, or a stand-in.
pub trait Registry: Sync {
    fn register(
        &self,
        registration: Registration,
        defaults: &ChildDefaults,
    ) -> impl Future<Output = Result<Registered, Status>> + Send;
}

impl Registry for Monitor {
    fn register(
        &self,
        registration: Registration,
        defaults: &ChildDefaults,
    ) -> impl Future<Output = Result<Registered, Status>> + Send {
        Monitor::register(self, registration, defaults)
    }
}

/// A string output of a registered resource, or the engine's unknown while
/// it is not known (preview).
pub fn text_output(resource: &Registered, key: &str) -> String {
    match resource.outputs.get(key) {
        Some(PropertyValue::String(value)) => value.clone(),
        Some(PropertyValue::Secret(inner)) => match inner.as_ref() {
            PropertyValue::String(value) => value.clone(),
            _ => UNKNOWN.to_string(),
        },
        _ => UNKNOWN.to_string(),
    }
}

/// The value of an output of a registered resource.
pub fn output_value(registered: &BTreeMap<String, Registered>, output: &OutputRef) -> String {
    registered
        .get(&output.resource)
        .map_or_else(|| UNKNOWN.to_string(), |r| text_output(r, &output.output))
}

/// Registers graphs under one parent.
pub struct Registrar<'a, R: Registry> {
    pub registry: &'a R,
    pub defaults: &'a ChildDefaults,
    /// The URN every resource is registered under.
    pub parent: &'a str,
    /// Every secret the parent was given: an input holding one (whole or
    /// inside a larger value) is stored as a secret, and so are the outputs
    /// that repeat it; no message quotes one.
    pub secrets: &'a SecretValues,
}

impl<R: Registry> Registrar<'_, R> {
    /// Registers every resource of `graph`, each after those it depends on,
    /// calling `registered` as each returns. Stops at the first failure,
    /// which names the resource.
    pub async fn register(
        &self,
        graph: &Graph,
        mut registered: impl FnMut(&str, &Registered),
    ) -> Result<BTreeMap<String, Registered>, Status> {
        let mut done: BTreeMap<String, Registered> = BTreeMap::new();
        let mut started: BTreeSet<&str> = BTreeSet::new();
        let mut running = FuturesUnordered::new();
        loop {
            let ready: Vec<(&str, &Declaration)> = graph
                .keys()
                .filter(|key| !started.contains(key))
                .filter_map(|key| graph.get(key).map(|d| (key, d)))
                .filter(|(_, d)| d.dependencies().iter().all(|on| done.contains_key(on)))
                .collect();
            for (key, declaration) in ready {
                let registration = self.registration(declaration, &done)?;
                started.insert(key);
                running.push(async move {
                    let result = self.registry.register(registration, self.defaults).await;
                    (key, declaration, result)
                });
            }
            let Some((key, declaration, result)) = running.next().await else {
                break;
            };
            let resource = result.map_err(|status| self.failed(declaration, &status))?;
            registered(key, &resource);
            done.insert(key.to_string(), resource);
        }
        if done.len() < graph.len() {
            // A checked graph has no cycle, so everything became ready.
            return Err(Status::internal(format!(
                "registered {} of {} resources: the rest depend on each other",
                done.len(),
                graph.len()
            )));
        }
        Ok(done)
    }

    /// The registration of `declaration`, its references resolved from the
    /// resources registered so far.
    fn registration(
        &self,
        declaration: &Declaration,
        done: &BTreeMap<String, Registered>,
    ) -> Result<Registration, Status> {
        let inputs = declaration
            .inputs
            .resolve(&|output| output_value(done, output))
            .map_err(|err| {
                Status::internal(format!("the inputs of `{}`: {err}", declaration.name))
            })?;
        let secret_keys = self.secrets.tainted_keys(&inputs);
        let additional_secret_outputs = secret_keys
            .iter()
            .flat_map(|key| {
                std::iter::once(key.clone()).chain(
                    declaration
                        .echoed_outputs
                        .get(key)
                        .into_iter()
                        .flatten()
                        .cloned(),
                )
            })
            .collect();
        let dependencies = declaration
            .dependencies()
            .iter()
            .map(|key| {
                done.get(key).map(|r| r.urn.clone()).ok_or_else(|| {
                    Status::internal(format!(
                        "`{}` was to be registered before `{key}`, which it depends on",
                        declaration.name
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Registration {
            type_token: declaration.type_token.clone(),
            name: declaration.name.clone(),
            parent: self.parent.to_string(),
            custom: declaration.custom,
            inputs: properties(&inputs, &secret_keys),
            dependencies,
            additional_secret_outputs,
            options: declaration.options.clone(),
            ..Default::default()
        })
    }

    fn failed(&self, declaration: &Declaration, status: &Status) -> Status {
        Status::new(
            status.code(),
            self.secrets.redact(&format!(
                "registering `{}` ({}): {}",
                declaration.name,
                declaration.type_token,
                status.message()
            )),
        )
    }
}

/// A JSON object as properties, the values under `secret_keys` secret.
pub fn properties(object: &Json, secret_keys: &BTreeSet<String>) -> PropertyMap {
    let Json::Object(entries) = object else {
        return PropertyMap::new();
    };
    entries
        .iter()
        .map(|(key, value)| {
            let property = json_to_property(value);
            let property = match secret_keys.contains(key) {
                true => PropertyValue::Secret(Box::new(property)),
                false => property,
            };
            (key.clone(), property)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::graph::OutputRef;
    use serde_json::json;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::sync::{Barrier, Notify};

    /// Registers in memory, recording when each registration starts and
    /// returns; `a` and `b` each wait until both have started, and `b`
    /// returns only once `c` has started.
    #[derive(Default)]
    struct Engine {
        events: Mutex<Vec<String>>,
        registrations: Mutex<BTreeMap<String, Registration>>,
        both_started: Option<Barrier>,
        c_started: Notify,
        failing: Option<&'static str>,
    }

    impl Engine {
        fn record(&self, event: String) {
            self.events.lock().unwrap().push(event);
        }

        fn events(&self) -> Vec<String> {
            self.events.lock().unwrap().clone()
        }
    }

    impl Registry for Engine {
        async fn register(
            &self,
            registration: Registration,
            _: &ChildDefaults,
        ) -> Result<Registered, Status> {
            let name = registration.name.clone();
            self.record(format!("start {name}"));
            self.registrations
                .lock()
                .unwrap()
                .insert(name.clone(), registration);
            if let Some(barrier) = self.both_started.as_ref().filter(|_| name != "c") {
                barrier.wait().await;
            }
            match name.as_str() {
                "b" if self.both_started.is_some() => self.c_started.notified().await,
                "c" => self.c_started.notify_one(),
                _ => {}
            }
            if self.failing == Some(name.as_str()) {
                return Err(Status::unavailable("the step failed"));
            }
            self.record(format!("end {name}"));
            Ok(Registered {
                urn: format!("urn:{name}"),
                id: name.clone(),
                outputs: PropertyMap::from([(
                    "arn".to_string(),
                    PropertyValue::String(format!("arn:{name}")),
                )]),
            })
        }
    }

    fn declared(key: &str, inputs: Json) -> (String, Declaration) {
        (
            key.to_string(),
            Declaration::custom("t:x:X", key.to_string(), &inputs),
        )
    }

    /// `c` uses `a`'s ARN; `b` is independent of both.
    fn graph() -> Graph {
        Graph::new([
            declared("a", json!({})),
            declared("b", json!({})),
            declared(
                "c",
                json!({"target": format!("{}/x", OutputRef::new("a", "arn").token())}),
            ),
        ])
        .unwrap()
    }

    async fn register(
        engine: &Engine,
        graph: &Graph,
        secrets: &SecretValues,
    ) -> Result<BTreeMap<String, Registered>, Status> {
        let defaults = ChildDefaults::default();
        let registrar = Registrar {
            registry: engine,
            defaults: &defaults,
            parent: "urn:parent",
            secrets,
        };
        // A registrar that waited for one registration before starting an
        // independent one would never finish.
        tokio::time::timeout(
            Duration::from_secs(10),
            registrar.register(graph, |_, _| {}),
        )
        .await
        .expect("the registrations deadlocked: independent ones did not run at once")
    }

    fn position(events: &[String], event: &str) -> usize {
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no `{event}` in {events:?}"))
    }

    #[tokio::test]
    async fn independent_resources_register_at_once_and_dependents_after_theirs() {
        let engine = Engine {
            both_started: Some(Barrier::new(2)),
            ..Engine::default()
        };
        let registered = register(&engine, &graph(), &SecretValues::default())
            .await
            .unwrap();
        assert_eq!(registered.len(), 3);
        let events = engine.events();
        // `a` and `b` were in flight together, `c` went once `a` returned,
        // while `b` was still in flight.
        assert!(position(&events, "start b") < position(&events, "end a"));
        assert!(position(&events, "start a") < position(&events, "end b"));
        assert!(position(&events, "end a") < position(&events, "start c"));
        assert!(position(&events, "start c") < position(&events, "end b"));

        let registrations = engine.registrations.lock().unwrap();
        let c = &registrations["c"];
        assert_eq!(c.inputs["target"], PropertyValue::String("arn:a/x".into()));
        assert_eq!(c.dependencies, BTreeSet::from(["urn:a".to_string()]));
        assert_eq!(c.parent, "urn:parent");
        assert!(registrations["a"].dependencies.is_empty());
    }

    #[tokio::test]
    async fn a_failure_names_the_resource_and_nothing_depending_on_it_starts() {
        let engine = Engine {
            failing: Some("a"),
            ..Engine::default()
        };
        let err = register(&engine, &graph(), &SecretValues::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert_eq!(err.message(), "registering `a` (t:x:X): the step failed");
        assert!(!engine.events().contains(&"start c".to_string()));
    }

    #[tokio::test]
    async fn inputs_holding_a_secret_once_resolved_are_secret_with_their_echoes() {
        let secret = PropertyValue::Secret(Box::new(PropertyValue::String("arn:a".into())));
        let secrets = SecretValues::of(&PropertyMap::from([("arn".to_string(), secret)]));
        let mut c = Declaration::custom(
            "t:x:X",
            "c".into(),
            &json!({"target": OutputRef::new("a", "arn").token(), "plain": "x"}),
        );
        c.echoed_outputs = BTreeMap::from([("target".into(), vec!["targets".into()])]);
        let graph = Graph::new([declared("a", json!({})), ("c".to_string(), c)]).unwrap();
        let engine = Engine::default();
        register(&engine, &graph, &secrets).await.unwrap();
        let registrations = engine.registrations.lock().unwrap();
        let c = &registrations["c"];
        assert!(matches!(c.inputs["target"], PropertyValue::Secret(_)));
        assert_eq!(c.inputs["plain"], PropertyValue::String("x".into()));
        assert_eq!(c.additional_secret_outputs, vec!["target", "targets"]);
    }
}
