//! The framework every custom resource kind is built on: check failures,
//! errors, the lifecycle kinds share ([`kind`]), the operation context they
//! call AWS through ([`op`]), and the adapter that turns the protocol's
//! untyped property maps into each kind's typed inputs.
//!
//! A kind is one type declaring its particulars ([`CustomResource`]); diffing is
//! generic (input by input, with the kind naming which inputs replace).

mod kind;
mod op;

pub use kind::{
    replace_keys, AutoName, CreateToken, CustomResource, Lifecycle, NameScope, Placement, TagChange,
};
pub use op::Op;

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;
use tokio::time::Instant;

use crate::aws::failure::AwsFailure;
use crate::aws::AwsContext;
use crate::engine_log::EngineLog;
use crate::protocol::json::{json_to_property, property_to_json, secret_paths, UNKNOWN};
use crate::protocol::value::{PropertyMap, PropertyValue};

/// A rejected input: the property path and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    pub property: String,
    pub reason: String,
}

impl CheckFailure {
    pub fn new(property: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            property: property.into(),
            reason: reason.into(),
        }
    }
}

/// Collects check failures so that a user sees all of them in one preview.
#[derive(Debug, Default)]
pub struct Failures(Vec<CheckFailure>);

impl Failures {
    pub fn push(&mut self, property: impl Into<String>, reason: impl Into<String>) {
        self.0.push(CheckFailure::new(property, reason));
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = CheckFailure>) {
        self.0.extend(other);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns `value` when nothing failed.
    pub fn into_result<T>(self, value: T) -> Result<T, Vec<CheckFailure>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

/// What `check` knows beyond the inputs.
pub struct CheckContext<'a> {
    /// The resource's logical name (last URN segment).
    pub name: &'a str,
    /// Engine-provided seed: stable per resource, used for auto-naming.
    pub random_seed: &'a [u8],
    /// Present once the provider is configured; checks that need the caller
    /// identity (account, region) are skipped before that.
    pub aws: Option<&'a AwsContext>,
}

/// What a lifecycle operation needs: AWS, and where to report progress.
pub struct OpContext<'a> {
    pub aws: &'a AwsContext,
    pub urn: &'a str,
    pub log: &'a EngineLog,
}

/// Why a lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The resource exists but is not fully configured. The engine records
    /// it with its state (so nothing is orphaned) and the next run repairs
    /// or deletes it. `cause` is what stopped its configuration.
    #[error("{cause}")]
    Partial {
        id: String,
        state: Json,
        cause: Box<ResourceError>,
    },
    /// An AWS call failed; its code and request id travel as values.
    #[error("{0}")]
    Aws(AwsFailure),
    /// Anything else (bad state, a rule of ours, a helper's own text).
    #[error("{0}")]
    Failed(String),
}

impl ResourceError {
    pub fn failed(context: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Failed(format!("{context}: {err}"))
    }
}

impl From<AwsFailure> for ResourceError {
    fn from(failure: AwsFailure) -> Self {
        Self::Aws(failure)
    }
}

/// True when a string input is not known yet (preview).
pub fn is_unknown(value: &str) -> bool {
    value == UNKNOWN
}

/// True when a string was built from a value not known yet (preview), such
/// as `<unknown bucket ARN>/*`.
pub fn has_unknown(value: &str) -> bool {
    value.contains(UNKNOWN)
}

/// The result of a diff, in protocol terms.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DiffResult {
    pub changed: Vec<String>,
    pub replaces: Vec<String>,
    /// Per changed key: true when the change replaces the resource.
    pub detailed: BTreeMap<String, DiffKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    Add,
    AddReplace,
    Delete,
    DeleteReplace,
    Update,
    UpdateReplace,
}

/// A typed resource seen through untyped property maps.
pub struct TypedInputs {
    pub json: Json,
    /// Top-level keys that held a secret anywhere inside.
    pub secret_keys: BTreeSet<String>,
    /// The paths of the secret values themselves (`a.b[0].c`).
    pub secret_paths: BTreeSet<String>,
    pub has_unknowns: bool,
}

/// Converts a property map into JSON, unwrapping secrets and turning
/// unknowns into the [`UNKNOWN`] sentinel string.
pub fn to_typed(map: &PropertyMap) -> TypedInputs {
    let mut object = serde_json::Map::new();
    let mut secret_keys = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut has_unknowns = false;
    for (key, value) in map {
        let converted = property_to_json(value);
        if converted.secret {
            secret_keys.insert(key.clone());
            paths.extend(secret_paths(value, key));
        }
        has_unknowns |= converted.unknown;
        object.insert(key.clone(), converted.json);
    }
    TypedInputs {
        json: Json::Object(object),
        secret_keys,
        secret_paths: paths,
        has_unknowns,
    }
}

/// Converts JSON back into a property map, re-marking secret keys.
pub fn from_typed(json: &Json, secret_keys: &BTreeSet<String>) -> PropertyMap {
    let mut map = PropertyMap::new();
    if let Json::Object(object) = json {
        for (key, value) in object {
            let property = json_to_property(value);
            let property = if secret_keys.contains(key) {
                PropertyValue::Secret(Box::new(property))
            } else {
                property
            };
            map.insert(key.clone(), property);
        }
    }
    map
}

/// Deserializes typed inputs, reporting the failing property path.
pub fn parse<T: DeserializeOwned>(json: &Json) -> Result<T, CheckFailure> {
    serde_path_to_error::deserialize(json).map_err(|err| {
        let path = err.path().to_string();
        let reason = err.into_inner().to_string();
        // A missing or unknown field is reported at the object holding it;
        // the field itself is the property to fix.
        let field = field_named_in(&reason);
        let property = match (path.as_str(), field) {
            (".", Some(field)) => field.to_string(),
            (".", None) => String::new(),
            (_, Some(field)) => format!("{path}.{field}"),
            (_, None) => path,
        };
        CheckFailure::new(property, reason)
    })
}

/// The field serde names in a "missing field `x`" or "unknown field `x`"
/// message.
fn field_named_in(reason: &str) -> Option<&str> {
    let rest = reason
        .strip_prefix("missing field `")
        .or_else(|| reason.strip_prefix("unknown field `"))?;
    rest.split_once('`').map(|(field, _)| field)
}

/// Serializes a value that the provider itself built.
pub fn to_json<T: Serialize>(value: &T) -> Json {
    // Serializing plain data structs (no maps with non-string keys) cannot fail.
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// Merges outputs into inputs to form the resource's state.
pub fn merge_state(inputs: &Json, outputs: &Json) -> Json {
    let mut state = inputs.clone();
    if let (Json::Object(state_map), Json::Object(output_map)) = (&mut state, outputs) {
        for (key, value) in output_map {
            state_map.insert(key.clone(), value.clone());
        }
    }
    state
}

/// Compares old and new inputs key by key.
pub fn diff_inputs(olds: &Json, news: &Json, replace_keys: &[&str]) -> DiffResult {
    let empty = serde_json::Map::new();
    let old_map = olds.as_object().unwrap_or(&empty);
    let new_map = news.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = old_map.keys().chain(new_map.keys()).collect();
    let mut result = DiffResult::default();
    for key in keys {
        let old = old_map.get(key).filter(|v| !v.is_null());
        let new = new_map.get(key).filter(|v| !v.is_null());
        let replaces = replace_keys.contains(&key.as_str());
        let kind = match (old, new) {
            (None, None) => continue,
            (Some(a), Some(b)) if a == b && !contains_unknown(b) => continue,
            (None, Some(_)) if replaces => DiffKind::AddReplace,
            (None, Some(_)) => DiffKind::Add,
            (Some(_), None) if replaces => DiffKind::DeleteReplace,
            (Some(_), None) => DiffKind::Delete,
            (Some(_), Some(_)) if replaces => DiffKind::UpdateReplace,
            (Some(_), Some(_)) => DiffKind::Update,
        };
        result.changed.push(key.clone());
        if replaces {
            result.replaces.push(key.clone());
        }
        result.detailed.insert(key.clone(), kind);
    }
    result
}

fn contains_unknown(value: &Json) -> bool {
    match value {
        Json::String(s) => is_unknown(s),
        Json::Array(items) => items.iter().any(contains_unknown),
        Json::Object(map) => map.values().any(contains_unknown),
        _ => false,
    }
}

/// The untyped face of a resource kind, used by the protocol layer.
/// `deadline` is when the engine wants a change over (its custom timeout).
#[async_trait]
pub trait ResourceHandler: Send + Sync {
    fn check(
        &self,
        ctx: &CheckContext<'_>,
        olds: Option<&PropertyMap>,
        news: &PropertyMap,
    ) -> Result<PropertyMap, Vec<CheckFailure>>;

    fn diff(&self, old_inputs: &PropertyMap, news: &PropertyMap) -> DiffResult;

    /// `preview`: return the planned state with outputs unknown.
    async fn create(
        &self,
        ctx: &OpContext<'_>,
        inputs: &PropertyMap,
        preview: bool,
        deadline: Option<Instant>,
    ) -> Result<(String, PropertyMap), ResourceError>;

    /// Returns `(inputs, state)`, or `None` when the resource is gone.
    async fn read(
        &self,
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &PropertyMap,
        state: &PropertyMap,
    ) -> Result<Option<(PropertyMap, PropertyMap)>, ResourceError>;

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        ctx: &OpContext<'_>,
        id: &str,
        old_inputs: &PropertyMap,
        news: &PropertyMap,
        state: &PropertyMap,
        preview: bool,
        deadline: Option<Instant>,
    ) -> Result<PropertyMap, ResourceError>;

    async fn delete(
        &self,
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &PropertyMap,
        state: &PropertyMap,
        deadline: Option<Instant>,
    ) -> Result<(), ResourceError>;
}

/// Adapts a typed [`CustomResource`] to [`ResourceHandler`].
pub struct Typed<R>(PhantomData<R>);

impl<R> Default for Typed<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: CustomResource> Typed<R> {
    fn inputs_from(map: &PropertyMap) -> Result<(R::Inputs, BTreeSet<String>), ResourceError> {
        let typed = to_typed(map);
        let inputs = parse::<R::Inputs>(&typed.json).map_err(|f| {
            ResourceError::Failed(format!(
                "{}: invalid inputs at {}: {}",
                R::TYPE,
                f.property,
                f.reason
            ))
        })?;
        Ok((inputs, typed.secret_keys))
    }

    fn outputs_from(state: &PropertyMap) -> Result<R::Outputs, ResourceError> {
        let typed = to_typed(state);
        parse::<R::Outputs>(&typed.json).map_err(|f| {
            ResourceError::Failed(format!(
                "{}: invalid state at {}: {}",
                R::TYPE,
                f.property,
                f.reason
            ))
        })
    }

    fn state(
        inputs: &R::Inputs,
        outputs: &R::Outputs,
        secret_keys: &BTreeSet<String>,
    ) -> PropertyMap {
        from_typed(
            &merge_state(&to_json(inputs), &to_json(outputs)),
            secret_keys,
        )
    }
}

#[async_trait]
impl<R: CustomResource> ResourceHandler for Typed<R> {
    fn check(
        &self,
        ctx: &CheckContext<'_>,
        olds: Option<&PropertyMap>,
        news: &PropertyMap,
    ) -> Result<PropertyMap, Vec<CheckFailure>> {
        let typed = to_typed(news);
        let parsed = match parse::<R::Inputs>(&typed.json) {
            Ok(parsed) => parsed,
            // A non-string input that is still unknown cannot be typed yet;
            // the engine checks again once it is known.
            Err(_) if typed.has_unknowns => return Ok(news.clone()),
            Err(failure) => return Err(vec![failure]),
        };
        let old_inputs = olds
            .map(|olds| parse::<R::Inputs>(&to_typed(olds).json))
            .and_then(Result::ok);
        let checked = kind::check::<R>(ctx, old_inputs.as_ref(), parsed)?;
        Ok(from_typed(&to_json(&checked), &typed.secret_keys))
    }

    fn diff(&self, old_inputs: &PropertyMap, news: &PropertyMap) -> DiffResult {
        diff_inputs(
            &to_typed(old_inputs).json,
            &to_typed(news).json,
            &replace_keys::<R>(),
        )
    }

    async fn create(
        &self,
        ctx: &OpContext<'_>,
        inputs: &PropertyMap,
        preview: bool,
        deadline: Option<Instant>,
    ) -> Result<(String, PropertyMap), ResourceError> {
        if preview {
            let mut state = inputs.clone();
            for key in R::OUTPUT_KEYS {
                state.insert((*key).to_string(), PropertyValue::Computed);
            }
            return Ok((String::new(), state));
        }
        let (typed, secret_keys) = Self::inputs_from(inputs)?;
        let (id, outputs) = kind::create::<R>(ctx, &typed, deadline).await?;
        Ok((id, Self::state(&typed, &outputs, &secret_keys)))
    }

    async fn read(
        &self,
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &PropertyMap,
        state: &PropertyMap,
    ) -> Result<Option<(PropertyMap, PropertyMap)>, ResourceError> {
        // Import passes no inputs: the state is all there is to go on.
        let source = if inputs.is_empty() { state } else { inputs };
        let (typed, secret_keys) = Self::inputs_from(source)?;
        let Some((live_inputs, outputs)) = kind::read::<R>(ctx, id, &typed).await? else {
            return Ok(None);
        };
        let live_input_map = from_typed(&to_json(&live_inputs), &secret_keys);
        Ok(Some((
            live_input_map,
            Self::state(&live_inputs, &outputs, &secret_keys),
        )))
    }

    async fn update(
        &self,
        ctx: &OpContext<'_>,
        id: &str,
        old_inputs: &PropertyMap,
        news: &PropertyMap,
        state: &PropertyMap,
        preview: bool,
        deadline: Option<Instant>,
    ) -> Result<PropertyMap, ResourceError> {
        if preview {
            let mut planned = state.clone();
            planned.extend(news.clone());
            return Ok(planned);
        }
        let (olds, _) = Self::inputs_from(old_inputs)?;
        let (typed, secret_keys) = Self::inputs_from(news)?;
        let outputs = Self::outputs_from(state)?;
        let outputs = kind::update::<R>(ctx, id, &olds, &typed, &outputs, deadline).await?;
        Ok(Self::state(&typed, &outputs, &secret_keys))
    }

    async fn delete(
        &self,
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &PropertyMap,
        state: &PropertyMap,
        deadline: Option<Instant>,
    ) -> Result<(), ResourceError> {
        let source = if inputs.is_empty() { state } else { inputs };
        let (typed, _) = Self::inputs_from(source)?;
        let outputs = Self::outputs_from(state)?;
        kind::delete::<R>(ctx, id, &typed, &outputs, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_updates_and_replacements() {
        let olds = json!({"name": "a", "retention": 7, "tags": {"k": "v"}});
        let news = json!({"name": "b", "retention": 30, "tags": {"k": "v"}});
        let diff = diff_inputs(&olds, &news, &["name"]);
        assert_eq!(diff.changed, vec!["name", "retention"]);
        assert_eq!(diff.replaces, vec!["name"]);
        assert_eq!(diff.detailed["name"], DiffKind::UpdateReplace);
        assert_eq!(diff.detailed["retention"], DiffKind::Update);
    }

    #[test]
    fn diff_treats_unknown_as_change_and_null_as_absent() {
        let olds = json!({"arn": "arn:aws:iam::1:role/x", "gone": 1, "nothing": null});
        let news = json!({"arn": UNKNOWN, "added": true});
        let diff = diff_inputs(&olds, &news, &[]);
        assert_eq!(diff.detailed["arn"], DiffKind::Update);
        assert_eq!(diff.detailed["gone"], DiffKind::Delete);
        assert_eq!(diff.detailed["added"], DiffKind::Add);
        assert!(!diff.detailed.contains_key("nothing"));
    }

    #[test]
    fn identical_inputs_have_no_diff() {
        let value = json!({"a": [1, 2], "b": {"c": "d"}});
        assert_eq!(diff_inputs(&value, &value, &["a"]), DiffResult::default());
    }

    #[test]
    fn parse_names_the_failing_property() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            days: u32,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            retention: Inner,
        }
        let failure = parse::<Outer>(&json!({"retention": {"days": "x"}})).unwrap_err();
        assert_eq!(failure.property, "retention.days");
        let failure = parse::<Outer>(&json!({})).unwrap_err();
        assert_eq!(failure.property, "retention");
        let failure = parse::<Outer>(&json!({"retention": {}})).unwrap_err();
        assert_eq!(failure.property, "retention.days");
    }

    #[test]
    fn secrets_survive_the_typed_round_trip() {
        let mut map = PropertyMap::new();
        map.insert(
            "token".into(),
            PropertyValue::Secret(Box::new(PropertyValue::String("s3cr3t".into()))),
        );
        map.insert("plain".into(), PropertyValue::String("p".into()));
        let typed = to_typed(&map);
        assert_eq!(typed.json, json!({"token": "s3cr3t", "plain": "p"}));
        assert_eq!(from_typed(&typed.json, &typed.secret_keys), map);
    }
}
