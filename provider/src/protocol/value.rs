//! Property values and their wire form.
//!
//! The engine sends inputs and state as `google.protobuf.Struct`s whose
//! plain JSON-like values carry Pulumi's extra kinds by convention:
//!
//! * an unknown value (not known until apply) is the string [`UNKNOWN`];
//! * secrets, assets, archives, resource references and output values are
//!   objects whose [`sig::KEY`] field holds the kind's signature.
//!
//! [`PropertyValue`] makes each of those kinds an explicit variant, so that
//! nothing past this module has to know the wire conventions.

use std::collections::BTreeMap;
use std::fmt;

use prost_types::{value::Kind, ListValue, Struct, Value};

/// The string that stands for a value not known until apply.
pub const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// Unknowns that also record the expected type (bool, number, array, asset,
/// archive, object). The engine may send them; they decode as
/// [`PropertyValue::Computed`] and are never sent back.
const TYPED_UNKNOWNS: [&str; 6] = [
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
];

/// Signatures of the special objects.
pub mod sig {
    /// The field that marks an object as special; its value is one of the
    /// signatures below.
    pub const KEY: &str = "4dabf18193072939515e22adb298388d";
    pub const SECRET: &str = "1b47061264138c4ac30d75fd1eb44270";
    pub const ASSET: &str = "c44067f5952c0a294b673a41bacd8c17";
    pub const ARCHIVE: &str = "0def7320c3a5731c473e5ecbe6d01bc7";
    pub const RESOURCE_REFERENCE: &str = "5cf8f73096256a8f31e491e813e4eb8e";
    pub const OUTPUT_VALUE: &str = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
}

fn is_unknown_sentinel(s: &str) -> bool {
    s == UNKNOWN || TYPED_UNKNOWNS.contains(&s)
}

/// A map of property names to values: a resource's inputs or state.
pub type PropertyMap = BTreeMap<String, PropertyValue>;

/// One property value.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<PropertyValue>),
    Object(PropertyMap),
    Asset(Asset),
    Archive(Archive),
    /// A value to be stored encrypted and never displayed.
    Secret(Box<PropertyValue>),
    /// A value not known until apply (previews).
    Computed,
    ResourceReference(ResourceReference),
    /// A value with its secrecy and the resources it came from.
    Output(OutputValue),
}

/// A file-like blob. Exactly one of `text`, `path` or `uri` is normally
/// set; all fields are kept as received.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Asset {
    pub hash: Option<String>,
    pub text: Option<String>,
    pub path: Option<String>,
    pub uri: Option<String>,
}

/// A collection of assets: a map of members, a path or a URI.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Archive {
    pub hash: Option<String>,
    pub assets: Option<BTreeMap<String, ArchiveMember>>,
    pub path: Option<String>,
    pub uri: Option<String>,
}

/// A member of an archive's map: an asset or a nested archive.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveMember {
    Asset(Asset),
    Archive(Archive),
}

/// A reference to another resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceReference {
    pub urn: String,
    /// `None` for component resources, which have no id.
    pub id: Option<ResourceId>,
    /// Empty when not given.
    pub package_version: String,
}

/// The id of a referenced custom resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceId {
    Known(String),
    /// Not yet known (the resource is still to be created). Sent as
    /// [`UNKNOWN`]; an empty id also decodes as unknown.
    Unknown,
}

/// An output value: a possibly unknown value, its secrecy, and the URNs of
/// the resources it depends on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputValue {
    /// `None` when the value is unknown.
    pub value: Option<Box<PropertyValue>>,
    pub secret: bool,
    pub dependencies: Vec<String>,
}

/// One step of a [`PropertyPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Where a value sits inside a property map, e.g. `stages[0].name`.
/// Secrets and outputs are transparent: they add no segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PropertyPath(pub Vec<PathSegment>);

impl PropertyPath {
    pub fn key(key: impl Into<String>) -> Self {
        Self(vec![PathSegment::Key(key.into())])
    }
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                PathSegment::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// Why a wire value could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("property `{path}`: {problem}")]
pub struct DecodeError {
    pub path: PropertyPath,
    pub problem: DecodeProblem,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeProblem {
    #[error("the value has no kind")]
    NoKind,
    #[error("the signature is not a string")]
    SignatureNotString,
    #[error("unknown signature `{0}`")]
    UnknownSignature(String),
    #[error("malformed secret: {0}")]
    MalformedSecret(&'static str),
    #[error("malformed asset: {0}")]
    MalformedAsset(String),
    #[error("malformed archive: {0}")]
    MalformedArchive(String),
    #[error("malformed resource reference: {0}")]
    MalformedResourceReference(&'static str),
    #[error("malformed output value: {0}")]
    MalformedOutput(&'static str),
}

/// Decodes a wire struct (inputs, state, config) into a property map.
pub fn decode_struct(value: &Struct) -> Result<PropertyMap, DecodeError> {
    Decoder::default().map(value)
}

/// Encodes a property map as a wire struct.
pub fn encode_struct(map: &PropertyMap) -> Struct {
    Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), v.to_proto())).collect(),
    }
}

impl PropertyValue {
    pub fn from_proto(value: &Value) -> Result<Self, DecodeError> {
        Decoder::default().value(value)
    }

    pub fn to_proto(&self) -> Value {
        match self {
            PropertyValue::Null => kind(Kind::NullValue(0)),
            PropertyValue::Bool(b) => kind(Kind::BoolValue(*b)),
            PropertyValue::Number(n) => kind(Kind::NumberValue(*n)),
            PropertyValue::String(s) => string(s),
            PropertyValue::Array(items) => {
                list(items.iter().map(PropertyValue::to_proto).collect())
            }
            PropertyValue::Object(map) => kind(Kind::StructValue(encode_struct(map))),
            PropertyValue::Asset(asset) => asset.to_proto(),
            PropertyValue::Archive(archive) => archive.to_proto(),
            PropertyValue::Secret(inner) => special(sig::SECRET, [("value", inner.to_proto())]),
            PropertyValue::Computed => string(UNKNOWN),
            PropertyValue::ResourceReference(reference) => {
                let mut fields = vec![("urn", string(&reference.urn))];
                match &reference.id {
                    Some(ResourceId::Known(id)) => fields.push(("id", string(id))),
                    Some(ResourceId::Unknown) => fields.push(("id", string(UNKNOWN))),
                    None => {}
                }
                if !reference.package_version.is_empty() {
                    fields.push(("packageVersion", string(&reference.package_version)));
                }
                special(sig::RESOURCE_REFERENCE, fields)
            }
            PropertyValue::Output(output) => {
                let mut fields = Vec::new();
                if let Some(value) = &output.value {
                    fields.push(("value", value.to_proto()));
                }
                if output.secret {
                    fields.push(("secret", kind(Kind::BoolValue(true))));
                }
                if !output.dependencies.is_empty() {
                    let urns = output.dependencies.iter().map(|urn| string(urn)).collect();
                    fields.push(("dependencies", list(urns)));
                }
                special(sig::OUTPUT_VALUE, fields)
            }
        }
    }

    /// Whether the value is or holds a secret, at any depth.
    pub fn contains_secrets(&self) -> bool {
        match self {
            PropertyValue::Secret(_) => true,
            PropertyValue::Output(output) => {
                output.secret || output.value.as_ref().is_some_and(|v| v.contains_secrets())
            }
            PropertyValue::Array(items) => items.iter().any(PropertyValue::contains_secrets),
            PropertyValue::Object(map) => map.values().any(PropertyValue::contains_secrets),
            _ => false,
        }
    }

    /// Whether the value is or holds an unknown, at any depth. A resource
    /// reference counts as known even when its id is not: its URN is.
    pub fn contains_unknowns(&self) -> bool {
        match self {
            PropertyValue::Computed => true,
            PropertyValue::Output(output) => {
                output.value.as_ref().is_none_or(|v| v.contains_unknowns())
            }
            PropertyValue::Secret(inner) => inner.contains_unknowns(),
            PropertyValue::Array(items) => items.iter().any(PropertyValue::contains_unknowns),
            PropertyValue::Object(map) => map.values().any(PropertyValue::contains_unknowns),
            _ => false,
        }
    }
}

impl Asset {
    fn to_proto(&self) -> Value {
        let fields = [
            ("hash", &self.hash),
            ("text", &self.text),
            ("path", &self.path),
            ("uri", &self.uri),
        ];
        special(
            sig::ASSET,
            fields
                .into_iter()
                .filter_map(|(name, field)| field.as_deref().map(|s| (name, string(s)))),
        )
    }
}

impl Archive {
    fn to_proto(&self) -> Value {
        let mut fields = Vec::new();
        if let Some(hash) = &self.hash {
            fields.push(("hash", string(hash)));
        }
        if let Some(assets) = &self.assets {
            let members = assets
                .iter()
                .map(|(name, member)| {
                    let value = match member {
                        ArchiveMember::Asset(asset) => asset.to_proto(),
                        ArchiveMember::Archive(archive) => archive.to_proto(),
                    };
                    (name.clone(), value)
                })
                .collect();
            fields.push((
                "assets",
                kind(Kind::StructValue(Struct { fields: members })),
            ));
        }
        if let Some(path) = &self.path {
            fields.push(("path", string(path)));
        }
        if let Some(uri) = &self.uri {
            fields.push(("uri", string(uri)));
        }
        special(sig::ARCHIVE, fields)
    }
}

fn kind(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

fn string(s: &str) -> Value {
    kind(Kind::StringValue(s.to_string()))
}

fn list(values: Vec<Value>) -> Value {
    kind(Kind::ListValue(ListValue { values }))
}

fn special<'a>(signature: &str, fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let fields = std::iter::once((sig::KEY.to_string(), string(signature)))
        .chain(fields.into_iter().map(|(k, v)| (k.to_string(), v)))
        .collect();
    kind(Kind::StructValue(Struct { fields }))
}

/// Walks a wire value, tracking the path for error messages.
#[derive(Default)]
struct Decoder {
    path: Vec<PathSegment>,
}

impl Decoder {
    fn fail(&self, problem: DecodeProblem) -> DecodeError {
        DecodeError {
            path: PropertyPath(self.path.clone()),
            problem,
        }
    }

    fn map(&mut self, value: &Struct) -> Result<PropertyMap, DecodeError> {
        let mut map = PropertyMap::new();
        for (key, item) in &value.fields {
            self.path.push(PathSegment::Key(key.clone()));
            let item = self.value(item)?;
            self.path.pop();
            map.insert(key.clone(), item);
        }
        Ok(map)
    }

    fn value(&mut self, value: &Value) -> Result<PropertyValue, DecodeError> {
        let Some(kind) = &value.kind else {
            return Err(self.fail(DecodeProblem::NoKind));
        };
        Ok(match kind {
            Kind::NullValue(_) => PropertyValue::Null,
            Kind::BoolValue(b) => PropertyValue::Bool(*b),
            Kind::NumberValue(n) => PropertyValue::Number(*n),
            Kind::StringValue(s) if is_unknown_sentinel(s) => PropertyValue::Computed,
            Kind::StringValue(s) => PropertyValue::String(s.clone()),
            Kind::ListValue(list) => {
                let mut items = Vec::with_capacity(list.values.len());
                for (i, item) in list.values.iter().enumerate() {
                    self.path.push(PathSegment::Index(i));
                    items.push(self.value(item)?);
                    self.path.pop();
                }
                PropertyValue::Array(items)
            }
            Kind::StructValue(object) => match object.fields.get(sig::KEY) {
                None => PropertyValue::Object(self.map(object)?),
                Some(Value {
                    kind: Some(Kind::StringValue(signature)),
                }) => self.special(signature, object)?,
                Some(_) => return Err(self.fail(DecodeProblem::SignatureNotString)),
            },
        })
    }

    fn special(&mut self, signature: &str, object: &Struct) -> Result<PropertyValue, DecodeError> {
        let field = |name: &str| object.fields.get(name);
        match signature {
            sig::SECRET => {
                let value = field("value")
                    .ok_or_else(|| self.fail(DecodeProblem::MalformedSecret("missing `value`")))?;
                Ok(PropertyValue::Secret(Box::new(self.value(value)?)))
            }
            sig::ASSET => decode_asset(object)
                .map(PropertyValue::Asset)
                .map_err(|reason| self.fail(DecodeProblem::MalformedAsset(reason))),
            sig::ARCHIVE => decode_archive(object)
                .map(PropertyValue::Archive)
                .map_err(|reason| self.fail(DecodeProblem::MalformedArchive(reason))),
            sig::RESOURCE_REFERENCE => self.resource_reference(object),
            sig::OUTPUT_VALUE => self.output(object),
            other => Err(self.fail(DecodeProblem::UnknownSignature(other.to_string()))),
        }
    }
}

fn decode_asset(object: &Struct) -> Result<Asset, String> {
    Ok(Asset {
        hash: optional_string(object, "hash")?,
        text: optional_string(object, "text")?,
        path: optional_string(object, "path")?,
        uri: optional_string(object, "uri")?,
    })
}

fn decode_archive(object: &Struct) -> Result<Archive, String> {
    let assets = match object.fields.get("assets").and_then(|v| v.kind.as_ref()) {
        None => None,
        Some(Kind::StructValue(members)) => {
            let mut assets = BTreeMap::new();
            for (name, member) in &members.fields {
                assets.insert(name.clone(), decode_archive_member(name, member)?);
            }
            Some(assets)
        }
        Some(_) => return Err("`assets` is not an object".to_string()),
    };
    Ok(Archive {
        hash: optional_string(object, "hash")?,
        assets,
        path: optional_string(object, "path")?,
        uri: optional_string(object, "uri")?,
    })
}

fn decode_archive_member(name: &str, member: &Value) -> Result<ArchiveMember, String> {
    let not_member = || format!("member `{name}` is not an asset or archive");
    let Some(Kind::StructValue(object)) = &member.kind else {
        return Err(not_member());
    };
    match object.fields.get(sig::KEY).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) if s == sig::ASSET => decode_asset(object)
            .map(ArchiveMember::Asset)
            .map_err(|reason| format!("member `{name}`: {reason}")),
        Some(Kind::StringValue(s)) if s == sig::ARCHIVE => decode_archive(object)
            .map(ArchiveMember::Archive)
            .map_err(|reason| format!("member `{name}`: {reason}")),
        _ => Err(not_member()),
    }
}

impl Decoder {
    fn resource_reference(&mut self, object: &Struct) -> Result<PropertyValue, DecodeError> {
        let malformed =
            |this: &Self, reason| this.fail(DecodeProblem::MalformedResourceReference(reason));
        let urn = match object.fields.get("urn").and_then(|v| v.kind.as_ref()) {
            Some(Kind::StringValue(urn)) => urn.clone(),
            Some(_) => return Err(malformed(self, "`urn` is not a string")),
            None => return Err(malformed(self, "missing `urn`")),
        };
        let id = match object.fields.get("id") {
            None => None,
            Some(id) => Some(match self.value(id)? {
                PropertyValue::String(id) if id.is_empty() => ResourceId::Unknown,
                PropertyValue::String(id) => ResourceId::Known(id),
                PropertyValue::Computed
                | PropertyValue::Output(OutputValue { value: None, .. }) => ResourceId::Unknown,
                PropertyValue::Output(OutputValue {
                    value: Some(value), ..
                }) => match *value {
                    PropertyValue::String(id) if !id.is_empty() => ResourceId::Known(id),
                    PropertyValue::String(_) | PropertyValue::Computed => ResourceId::Unknown,
                    _ => return Err(malformed(self, "`id` is not a string")),
                },
                _ => return Err(malformed(self, "`id` is not a string")),
            }),
        };
        let package_version = match object
            .fields
            .get("packageVersion")
            .and_then(|v| v.kind.as_ref())
        {
            None => String::new(),
            Some(Kind::StringValue(version)) => version.clone(),
            Some(_) => return Err(malformed(self, "`packageVersion` is not a string")),
        };
        Ok(PropertyValue::ResourceReference(ResourceReference {
            urn,
            id,
            package_version,
        }))
    }

    fn output(&mut self, object: &Struct) -> Result<PropertyValue, DecodeError> {
        let malformed = |this: &Self, reason| this.fail(DecodeProblem::MalformedOutput(reason));
        let secret = match object.fields.get("secret").and_then(|v| v.kind.as_ref()) {
            None => false,
            Some(Kind::BoolValue(secret)) => *secret,
            Some(_) => return Err(malformed(self, "`secret` is not a bool")),
        };
        let dependencies = match object
            .fields
            .get("dependencies")
            .and_then(|v| v.kind.as_ref())
        {
            None => Vec::new(),
            Some(Kind::ListValue(list)) => {
                let mut urns = Vec::with_capacity(list.values.len());
                for urn in &list.values {
                    match &urn.kind {
                        Some(Kind::StringValue(urn)) => urns.push(urn.clone()),
                        _ => return Err(malformed(self, "a dependency is not a string")),
                    }
                }
                urns
            }
            Some(_) => return Err(malformed(self, "`dependencies` is not a list")),
        };
        let value = match object.fields.get("value") {
            None => None,
            Some(value) => Some(Box::new(self.value(value)?)),
        };
        Ok(PropertyValue::Output(OutputValue {
            value,
            secret,
            dependencies,
        }))
    }
}

fn optional_string(object: &Struct, name: &str) -> Result<Option<String>, String> {
    match object.fields.get(name).and_then(|v| v.kind.as_ref()) {
        None => Ok(None),
        Some(Kind::StringValue(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{name}` is not a string")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::option;
    use proptest::prelude::*;

    // ---- strategies -------------------------------------------------------

    fn text() -> impl Strategy<Value = String> {
        // Short strings can never collide with the 36-character sentinels.
        "\\PC{0,12}"
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,8}"
    }

    fn urn() -> impl Strategy<Value = String> {
        "[a-z]{1,6}"
            .prop_map(|name| format!("urn:pulumi:dev::app::securepipeline:aws:Role::{name}"))
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<i32>().prop_map(f64::from),
            -1.0e12..1.0e12f64,
            Just(0.5),
        ]
    }

    fn asset() -> impl Strategy<Value = Asset> {
        (
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(text()),
        )
            .prop_map(|(hash, text, path, uri)| Asset {
                hash,
                text,
                path,
                uri,
            })
    }

    fn archive() -> impl Strategy<Value = Archive> {
        let leaf = (option::of(text()), option::of(text()), option::of(text())).prop_map(
            |(hash, path, uri)| Archive {
                hash,
                assets: None,
                path,
                uri,
            },
        );
        leaf.prop_recursive(2, 8, 3, |inner| {
            let member = prop_oneof![
                asset().prop_map(ArchiveMember::Asset),
                inner.prop_map(ArchiveMember::Archive),
            ];
            (option::of(text()), btree_map(key(), member, 0..3)).prop_map(|(hash, assets)| {
                Archive {
                    hash,
                    assets: Some(assets),
                    path: None,
                    uri: None,
                }
            })
        })
    }

    fn reference() -> impl Strategy<Value = ResourceReference> {
        let id = prop_oneof![
            "[a-z0-9-]{1,10}".prop_map(ResourceId::Known),
            Just(ResourceId::Unknown),
        ];
        (
            urn(),
            option::of(id),
            prop_oneof![Just(String::new()), "[0-9]\\.[0-9]\\.[0-9]"],
        )
            .prop_map(|(urn, id, package_version)| ResourceReference {
                urn,
                id,
                package_version,
            })
    }

    pub(crate) fn value() -> impl Strategy<Value = PropertyValue> {
        let leaf = prop_oneof![
            Just(PropertyValue::Null),
            any::<bool>().prop_map(PropertyValue::Bool),
            number().prop_map(PropertyValue::Number),
            text().prop_map(PropertyValue::String),
            Just(PropertyValue::Computed),
            asset().prop_map(PropertyValue::Asset),
            archive().prop_map(PropertyValue::Archive),
            reference().prop_map(PropertyValue::ResourceReference),
        ];
        leaf.prop_recursive(4, 64, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(PropertyValue::Array),
                btree_map(key(), inner.clone(), 0..5).prop_map(PropertyValue::Object),
                inner.clone().prop_map(|v| match v {
                    secret @ PropertyValue::Secret(_) => secret,
                    other => PropertyValue::Secret(Box::new(other)),
                }),
                (option::of(inner), any::<bool>(), vec(urn(), 0..3)).prop_map(
                    |(value, secret, dependencies)| {
                        PropertyValue::Output(OutputValue {
                            value: value.map(Box::new),
                            secret,
                            dependencies,
                        })
                    }
                ),
            ]
        })
    }

    /// Cases for the input fuzzers: few by default so they run in seconds;
    /// `PROPTEST_CASES=5000 cargo test ...` runs more.
    pub(crate) fn fuzz_config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64);
        ProptestConfig::with_cases(cases)
    }

    /// Arbitrary inputs: known property names as well as random ones, so
    /// that the wrong-type paths of real fields are reached.
    pub(crate) fn any_map(names: Vec<String>) -> impl Strategy<Value = PropertyMap> {
        let name = prop_oneof![3 => proptest::sample::select(names), 1 => key()];
        btree_map(name, value(), 0..6)
    }

    /// One step into a value: a key of an object or an index of an array.
    #[derive(Debug, Clone)]
    enum Step {
        Key(String),
        Index(usize),
    }

    fn paths(value: &PropertyValue, prefix: &mut Vec<Step>, found: &mut Vec<Vec<Step>>) {
        match value {
            PropertyValue::Object(map) => {
                for (key, item) in map {
                    prefix.push(Step::Key(key.clone()));
                    found.push(prefix.clone());
                    paths(item, prefix, found);
                    prefix.pop();
                }
            }
            PropertyValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    prefix.push(Step::Index(index));
                    found.push(prefix.clone());
                    paths(item, prefix, found);
                    prefix.pop();
                }
            }
            PropertyValue::Secret(inner) => paths(inner, prefix, found),
            _ => {}
        }
    }

    fn at<'a>(value: &'a mut PropertyValue, path: &[Step]) -> Option<&'a mut PropertyValue> {
        let Some((first, rest)) = path.split_first() else {
            return Some(value);
        };
        let child = match (value, first) {
            (PropertyValue::Secret(inner), _) => return at(inner, path),
            (PropertyValue::Object(map), Step::Key(key)) => map.get_mut(key)?,
            (PropertyValue::Array(items), Step::Index(index)) => items.get_mut(*index)?,
            _ => return None,
        };
        at(child, rest)
    }

    /// Inputs one change away from `valid`: a value anywhere in the tree is
    /// replaced by an arbitrary one (wrong type, unknown, reference...),
    /// made secret, unknown or an output, or nulled, or a key is added.
    pub(crate) fn near(valid: PropertyMap) -> impl Strategy<Value = PropertyMap> {
        let mut found = Vec::new();
        paths(
            &PropertyValue::Object(valid.clone()),
            &mut Vec::new(),
            &mut found,
        );
        (any::<proptest::sample::Index>(), 0..6u8, value(), key()).prop_map(
            move |(index, op, replacement, new_key)| {
                let mut root = PropertyValue::Object(valid.clone());
                let path = found.get(index.index(found.len().max(1))).cloned();
                let path = path.unwrap_or_default();
                if let Some(target) = at(&mut root, &path) {
                    let old = std::mem::replace(target, PropertyValue::Null);
                    *target = match op {
                        0 => replacement,
                        1 => PropertyValue::Secret(Box::new(old)),
                        2 => PropertyValue::Computed,
                        3 => PropertyValue::Output(OutputValue {
                            value: Some(Box::new(old)),
                            secret: true,
                            dependencies: Vec::new(),
                        }),
                        4 => match old {
                            PropertyValue::Object(mut map) => {
                                map.insert(new_key, replacement);
                                PropertyValue::Object(map)
                            }
                            PropertyValue::Array(mut items) => {
                                items.push(replacement);
                                PropertyValue::Array(items)
                            }
                            _ => replacement,
                        },
                        _ => PropertyValue::Null,
                    };
                }
                match root {
                    PropertyValue::Object(map) => map,
                    _ => valid.clone(),
                }
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn wire_round_trip(v in value()) {
            let decoded = PropertyValue::from_proto(&v.to_proto());
            prop_assert_eq!(decoded, Ok(v));
        }

        #[test]
        fn struct_round_trip(map in btree_map(key(), value(), 0..5)) {
            prop_assert_eq!(decode_struct(&encode_struct(&map)), Ok(map));
        }

        #[test]
        fn round_trip_keeps_unknowns_and_secrets(v in value()) {
            let decoded = PropertyValue::from_proto(&v.to_proto()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded.contains_unknowns(), v.contains_unknowns());
            prop_assert_eq!(decoded.contains_secrets(), v.contains_secrets());
        }




    }

    // ---- hand-built wire values ------------------------------------------

    fn s(text: &str) -> Value {
        string(text)
    }

    fn obj<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        kind(Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }))
    }

    fn decode(value: Value) -> Result<PropertyValue, DecodeError> {
        PropertyValue::from_proto(&value)
    }

    fn problem(value: Value) -> DecodeProblem {
        match decode(value) {
            Err(err) => err.problem,
            Ok(v) => panic!("decoded unexpectedly: {v:?}"),
        }
    }

    #[test]
    fn decodes_plain_values() {
        let value = obj([
            ("n", kind(Kind::NullValue(0))),
            ("b", kind(Kind::BoolValue(true))),
            ("x", kind(Kind::NumberValue(2.5))),
            ("s", s("hi")),
            ("l", list(vec![s("a"), kind(Kind::NumberValue(1.0))])),
        ]);
        let expected = PropertyValue::Object(PropertyMap::from([
            ("n".to_string(), PropertyValue::Null),
            ("b".to_string(), PropertyValue::Bool(true)),
            ("x".to_string(), PropertyValue::Number(2.5)),
            ("s".to_string(), PropertyValue::String("hi".into())),
            (
                "l".to_string(),
                PropertyValue::Array(vec![
                    PropertyValue::String("a".into()),
                    PropertyValue::Number(1.0),
                ]),
            ),
        ]));
        assert_eq!(decode(value), Ok(expected));
    }

    #[test]
    fn decodes_unknowns() {
        assert_eq!(decode(s(UNKNOWN)), Ok(PropertyValue::Computed));
        for typed in TYPED_UNKNOWNS {
            assert_eq!(decode(s(typed)), Ok(PropertyValue::Computed));
        }
        assert_eq!(PropertyValue::Computed.to_proto(), s(UNKNOWN));
    }

    #[test]
    fn decodes_secrets() {
        let value = obj([(sig::KEY, s(sig::SECRET)), ("value", s("hunter2"))]);
        let decoded = decode(value);
        assert_eq!(
            decoded,
            Ok(PropertyValue::Secret(Box::new(PropertyValue::String(
                "hunter2".into()
            ))))
        );
    }

    #[test]
    fn decodes_assets() {
        let value = obj([
            (sig::KEY, s(sig::ASSET)),
            ("hash", s("abc")),
            ("text", s("hello")),
        ]);
        assert_eq!(
            decode(value),
            Ok(PropertyValue::Asset(Asset {
                hash: Some("abc".into()),
                text: Some("hello".into()),
                ..Asset::default()
            }))
        );
    }

    #[test]
    fn decodes_archives_with_nested_members() {
        let file = obj([(sig::KEY, s(sig::ASSET)), ("path", s("./a.txt"))]);
        let inner = obj([
            (sig::KEY, s(sig::ARCHIVE)),
            ("uri", s("https://example.com/x.zip")),
        ]);
        let value = obj([
            (sig::KEY, s(sig::ARCHIVE)),
            ("hash", s("h")),
            ("assets", obj([("a.txt", file), ("nested", inner)])),
        ]);
        let expected = Archive {
            hash: Some("h".into()),
            assets: Some(BTreeMap::from([
                (
                    "a.txt".to_string(),
                    ArchiveMember::Asset(Asset {
                        path: Some("./a.txt".into()),
                        ..Asset::default()
                    }),
                ),
                (
                    "nested".to_string(),
                    ArchiveMember::Archive(Archive {
                        uri: Some("https://example.com/x.zip".into()),
                        ..Archive::default()
                    }),
                ),
            ])),
            ..Archive::default()
        };
        assert_eq!(decode(value), Ok(PropertyValue::Archive(expected)));
    }

    #[test]
    fn decodes_resource_references() {
        let urn = "urn:pulumi:dev::app::securepipeline:aws:Role::r";
        let reference = |id| {
            PropertyValue::ResourceReference(ResourceReference {
                urn: urn.into(),
                id,
                package_version: String::new(),
            })
        };
        let known = obj([
            (sig::KEY, s(sig::RESOURCE_REFERENCE)),
            ("urn", s(urn)),
            ("id", s("role-1")),
        ]);
        assert_eq!(
            decode(known),
            Ok(reference(Some(ResourceId::Known("role-1".into()))))
        );

        let unknown = obj([
            (sig::KEY, s(sig::RESOURCE_REFERENCE)),
            ("urn", s(urn)),
            ("id", s(UNKNOWN)),
        ]);
        assert_eq!(decode(unknown), Ok(reference(Some(ResourceId::Unknown))));

        // The engine writes an unknown id as the empty string.
        let empty = obj([
            (sig::KEY, s(sig::RESOURCE_REFERENCE)),
            ("urn", s(urn)),
            ("id", s("")),
        ]);
        assert_eq!(decode(empty), Ok(reference(Some(ResourceId::Unknown))));

        let component = obj([
            (sig::KEY, s(sig::RESOURCE_REFERENCE)),
            ("urn", s(urn)),
            ("packageVersion", s("1.2.3")),
        ]);
        assert_eq!(
            decode(component),
            Ok(PropertyValue::ResourceReference(ResourceReference {
                urn: urn.into(),
                id: None,
                package_version: "1.2.3".into(),
            }))
        );
    }

    #[test]
    fn decodes_output_values() {
        let urn = "urn:pulumi:dev::app::securepipeline:aws:Role::r";
        let known = obj([
            (sig::KEY, s(sig::OUTPUT_VALUE)),
            ("value", s("arn:aws:iam::123456789012:role/r")),
            ("secret", kind(Kind::BoolValue(true))),
            ("dependencies", list(vec![s(urn)])),
        ]);
        let decoded = decode(known);
        let expected = PropertyValue::Output(OutputValue {
            value: Some(Box::new(PropertyValue::String(
                "arn:aws:iam::123456789012:role/r".into(),
            ))),
            secret: true,
            dependencies: vec![urn.into()],
        });
        assert_eq!(decoded, Ok(expected));

        let unknown = obj([(sig::KEY, s(sig::OUTPUT_VALUE))]);
        let decoded = decode(unknown);
        assert_eq!(decoded, Ok(PropertyValue::Output(OutputValue::default())));
        let decoded = decoded.unwrap_or(PropertyValue::Null);
        assert!(decoded.contains_unknowns());
    }

    #[test]
    fn errors_name_the_path() {
        let value = obj([(
            "stages",
            list(vec![
                obj([]),
                obj([("token", obj([(sig::KEY, s(sig::SECRET))]))]),
            ]),
        )]);
        let Kind::StructValue(object) = value.kind.unwrap_or(Kind::NullValue(0)) else {
            panic!("built a struct");
        };
        let err = decode_struct(&object).expect_err("the secret is malformed");
        assert_eq!(err.path.to_string(), "stages[1].token");
        assert_eq!(
            err.problem,
            DecodeProblem::MalformedSecret("missing `value`")
        );
        assert_eq!(
            err.to_string(),
            "property `stages[1].token`: malformed secret: missing `value`"
        );
    }

    #[test]
    fn reports_each_decode_problem() {
        let rr = sig::RESOURCE_REFERENCE;
        let out = sig::OUTPUT_VALUE;
        let urn = ("urn", s("urn:pulumi:dev::app::t::n"));

        assert_eq!(problem(Value { kind: None }), DecodeProblem::NoKind);
        assert_eq!(
            problem(obj([(sig::KEY, kind(Kind::NumberValue(1.0)))])),
            DecodeProblem::SignatureNotString
        );
        assert_eq!(
            problem(obj([(sig::KEY, s("ffff"))])),
            DecodeProblem::UnknownSignature("ffff".into())
        );
        assert_eq!(
            problem(obj([(sig::KEY, s(sig::SECRET))])),
            DecodeProblem::MalformedSecret("missing `value`")
        );
        assert_eq!(
            problem(obj([
                (sig::KEY, s(sig::ASSET)),
                ("text", kind(Kind::BoolValue(true)))
            ])),
            DecodeProblem::MalformedAsset("`text` is not a string".into())
        );
        assert_eq!(
            problem(obj([(sig::KEY, s(sig::ARCHIVE)), ("assets", s("x"))])),
            DecodeProblem::MalformedArchive("`assets` is not an object".into())
        );
        assert_eq!(
            problem(obj([
                (sig::KEY, s(sig::ARCHIVE)),
                ("assets", obj([("a", s("x"))]))
            ])),
            DecodeProblem::MalformedArchive("member `a` is not an asset or archive".into())
        );
        assert_eq!(
            problem(obj([(sig::KEY, s(rr))])),
            DecodeProblem::MalformedResourceReference("missing `urn`")
        );
        assert_eq!(
            problem(obj([
                (sig::KEY, s(rr)),
                ("urn", kind(Kind::BoolValue(false)))
            ])),
            DecodeProblem::MalformedResourceReference("`urn` is not a string")
        );
        assert_eq!(
            problem(obj([
                (sig::KEY, s(rr)),
                urn.clone(),
                ("id", kind(Kind::NumberValue(3.0)))
            ])),
            DecodeProblem::MalformedResourceReference("`id` is not a string")
        );
        assert_eq!(
            problem(obj([
                (sig::KEY, s(rr)),
                urn,
                ("packageVersion", kind(Kind::NullValue(0)))
            ])),
            DecodeProblem::MalformedResourceReference("`packageVersion` is not a string")
        );
        assert_eq!(
            problem(obj([(sig::KEY, s(out)), ("secret", s("yes"))])),
            DecodeProblem::MalformedOutput("`secret` is not a bool")
        );
        assert_eq!(
            problem(obj([(sig::KEY, s(out)), ("dependencies", s("urn"))])),
            DecodeProblem::MalformedOutput("`dependencies` is not a list")
        );
        assert_eq!(
            problem(obj([
                (sig::KEY, s(out)),
                ("dependencies", list(vec![kind(Kind::BoolValue(true))]))
            ])),
            DecodeProblem::MalformedOutput("a dependency is not a string")
        );
    }

    #[test]
    fn paths_quote_unusual_keys() {
        let path = PropertyPath(vec![
            PathSegment::Key("tags".into()),
            PathSegment::Key("team.name".into()),
            PathSegment::Index(2),
        ]);
        assert_eq!(path.to_string(), "tags[\"team.name\"][2]");
    }
}
