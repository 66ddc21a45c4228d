//! A graph of resources to register: each declared with its type, name,
//! inputs, options and dependencies, where an input may refer to an output
//! of another declared resource before that resource exists. Pure: a graph
//! is checked (every dependency and reference names a declared resource,
//! no cycle) and ordered without an engine; `registrar` registers it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::json::UNKNOWN;
use super::monitor::ResourceOptions;

/// Open and close an output's token inside a string: characters of
/// Unicode's private use area, which no input a user writes holds.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// One output of one declared resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutputRef {
    /// The key the resource is declared under in its graph.
    pub resource: String,
    pub output: String,
}

impl OutputRef {
    pub fn new(resource: impl Into<String>, output: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            output: output.into(),
        }
    }

    /// The text that stands for this output inside a typed input until it
    /// is known, so that inputs keep their types while they are declared:
    /// an ARN in a policy's resource, or `<bucket ARN>/<prefix>/*`.
    pub fn token(&self) -> String {
        format!("{OPEN}{}.{}{CLOSE}", self.resource, self.output)
    }
}

/// A part of a string input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Output(OutputRef),
}

/// The pieces of a string: literal text and the outputs its tokens name.
fn pieces(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len_utf8()..];
        let Some(end) = after.find(CLOSE) else { break };
        // Resource keys may hold dots; output names never do.
        let Some((resource, output)) = after[..end].rsplit_once('.') else {
            break;
        };
        if start > 0 {
            pieces.push(Piece::Literal(rest[..start].to_string()));
        }
        pieces.push(Piece::Output(OutputRef::new(resource, output)));
        rest = &after[end + CLOSE.len_utf8()..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_string()));
    }
    pieces
}

/// What a computed input is made from: the values of the outputs it
/// declared, [`UNKNOWN`] while one is not known (preview).
pub struct Values<'a> {
    known: BTreeMap<&'a OutputRef, String>,
}

impl Values<'_> {
    pub fn get(&self, output: &OutputRef) -> &str {
        self.known.get(output).map_or(UNKNOWN, String::as_str)
    }
}

type Compute = dyn Fn(&Values<'_>) -> Json + Send + Sync;

/// An input that depends on what outputs are, not only on where they go
/// (the action a grant names follows the service in an ARN). What it
/// returns may hold tokens of the outputs it declared, and of no others.
#[derive(Clone)]
pub struct Computed {
    outputs: BTreeSet<OutputRef>,
    compute: Arc<Compute>,
}

impl fmt::Debug for Computed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Computed")
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

/// A declared input: a value, with the outputs it refers to where they go.
#[derive(Debug, Clone)]
pub enum Input {
    /// A value that refers to no output.
    Value(Json),
    /// A string made of literal text and outputs.
    Text(Vec<Piece>),
    Array(Vec<Input>),
    /// Keys in their order.
    Object(Vec<(String, Input)>),
    Computed(Computed),
}

/// An output, or a computed input, refers to something the graph does
/// not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("`{0}` is declared twice")]
    Duplicate(String),
    #[error("`{resource}` depends on `{dependency}`, which is not declared")]
    Undeclared {
        resource: String,
        dependency: String,
    },
    #[error("a computed input refers to output `{}` of `{}`, which it did not declare", .0.output, .0.resource)]
    UndeclaredOutput(OutputRef),
    #[error("`{}` depend on each other", .0.join("`, `"))]
    Cycle(Vec<String>),
}

impl Input {
    /// The input a JSON value stands for, with every token in its strings
    /// read as the output it names.
    pub fn of(json: &Json) -> Self {
        match json {
            Json::String(text) => match pieces(text).as_slice() {
                [] | [Piece::Literal(_)] => Input::Value(json.clone()),
                pieces => Input::Text(pieces.to_vec()),
            },
            Json::Array(items) => {
                let items: Vec<Input> = items.iter().map(Input::of).collect();
                if items.iter().all(|i| matches!(i, Input::Value(_))) {
                    Input::Value(json.clone())
                } else {
                    Input::Array(items)
                }
            }
            Json::Object(map) => {
                let entries: Vec<(String, Input)> =
                    map.iter().map(|(k, v)| (k.clone(), Input::of(v))).collect();
                if entries.iter().all(|(_, i)| matches!(i, Input::Value(_))) {
                    Input::Value(json.clone())
                } else {
                    Input::Object(entries)
                }
            }
            _ => Input::Value(json.clone()),
        }
    }

    /// An input computed from the values of `outputs` once they are known.
    pub fn computed(
        outputs: impl IntoIterator<Item = OutputRef>,
        compute: impl Fn(&Values<'_>) -> Json + Send + Sync + 'static,
    ) -> Self {
        Input::Computed(Computed {
            outputs: outputs.into_iter().collect(),
            compute: Arc::new(compute),
        })
    }

    /// Sets one key of an object input, in place when the key is there.
    pub fn set(&mut self, key: &str, input: Input) {
        if let Input::Value(Json::Object(map)) = self {
            let entries = map
                .iter()
                .map(|(k, v)| (k.clone(), Input::Value(v.clone())))
                .collect();
            *self = Input::Object(entries);
        }
        if let Input::Object(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, slot)) => *slot = input,
                None => entries.push((key.to_string(), input)),
            }
        }
    }

    /// Every output this input refers to.
    pub fn outputs(&self) -> BTreeSet<OutputRef> {
        let mut found = BTreeSet::new();
        self.collect(&mut found);
        found
    }

    fn collect(&self, found: &mut BTreeSet<OutputRef>) {
        match self {
            Input::Value(_) => {}
            Input::Text(pieces) => found.extend(pieces.iter().filter_map(|p| match p {
                Piece::Output(output) => Some(output.clone()),
                Piece::Literal(_) => None,
            })),
            Input::Array(items) => items.iter().for_each(|i| i.collect(found)),
            Input::Object(entries) => entries.iter().for_each(|(_, i)| i.collect(found)),
            Input::Computed(computed) => found.extend(computed.outputs.iter().cloned()),
        }
    }

    /// The input's value, each output replaced by what `value` says it is.
    pub fn resolve(&self, value: &dyn Fn(&OutputRef) -> String) -> Result<Json, GraphError> {
        Ok(match self {
            Input::Value(json) => json.clone(),
            Input::Text(pieces) => Json::String(
                pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Literal(text) => text.clone(),
                        Piece::Output(output) => value(output),
                    })
                    .collect(),
            ),
            Input::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|i| i.resolve(value))
                    .collect::<Result<_, _>>()?,
            ),
            Input::Object(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, i)| Ok((k.clone(), i.resolve(value)?)))
                    .collect::<Result<Map<_, _>, GraphError>>()?,
            ),
            Input::Computed(computed) => {
                let values = Values {
                    known: computed.outputs.iter().map(|o| (o, value(o))).collect(),
                };
                let result = Input::of(&(computed.compute)(&values));
                if let Some(stray) = result
                    .outputs()
                    .into_iter()
                    .find(|o| !computed.outputs.contains(o))
                {
                    return Err(GraphError::UndeclaredOutput(stray));
                }
                result.resolve(value)?
            }
        })
    }
}

/// One resource to register.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub type_token: String,
    /// The name the resource is registered under.
    pub name: String,
    pub custom: bool,
    /// An object of inputs.
    pub inputs: Input,
    /// Resources this one uses without referring to an output of theirs:
    /// it is registered after them all the same.
    pub uses: BTreeSet<String>,
    pub options: ResourceOptions,
    /// Per input, the outputs that repeat it besides its own name: they
    /// are stored as secrets when the input is.
    pub echoed_outputs: BTreeMap<String, Vec<String>>,
}

impl Declaration {
    /// A custom resource with these inputs (a JSON object whose strings may
    /// hold output tokens) and default options.
    pub fn custom(type_token: &str, name: String, inputs: &Json) -> Self {
        Self {
            type_token: type_token.to_string(),
            name,
            custom: true,
            inputs: Input::of(inputs),
            uses: BTreeSet::new(),
            options: ResourceOptions::default(),
            echoed_outputs: BTreeMap::new(),
        }
    }

    /// The keys of every resource this one is registered after: those it
    /// uses and those whose outputs its inputs refer to.
    pub fn dependencies(&self) -> BTreeSet<String> {
        let mut dependencies = self.uses.clone();
        dependencies.extend(self.inputs.outputs().into_iter().map(|o| o.resource));
        dependencies
    }
}

/// Declarations by key, checked, with an order to register them in.
#[derive(Debug, Clone)]
pub struct Graph {
    declarations: BTreeMap<String, Declaration>,
    waves: Vec<Vec<String>>,
}

impl Graph {
    pub fn new(
        declarations: impl IntoIterator<Item = (String, Declaration)>,
    ) -> Result<Self, GraphError> {
        let mut by_key = BTreeMap::new();
        for (key, declaration) in declarations {
            if by_key.insert(key.clone(), declaration).is_some() {
                return Err(GraphError::Duplicate(key));
            }
        }
        for (key, declaration) in &by_key {
            if let Some(missing) = declaration
                .dependencies()
                .into_iter()
                .find(|d| !by_key.contains_key(d))
            {
                return Err(GraphError::Undeclared {
                    resource: key.clone(),
                    dependency: missing,
                });
            }
        }
        let waves = waves(&by_key)?;
        Ok(Self {
            declarations: by_key,
            waves,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Declaration> {
        self.declarations.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.declarations.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.declarations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.declarations.is_empty()
    }

    /// The keys in registration order, in waves: each resource depends only
    /// on resources of earlier waves, so a wave could register at once.
    pub fn waves(&self) -> &[Vec<String>] {
        &self.waves
    }
}

fn waves(declarations: &BTreeMap<String, Declaration>) -> Result<Vec<Vec<String>>, GraphError> {
    let dependencies: BTreeMap<&str, BTreeSet<String>> = declarations
        .iter()
        .map(|(k, d)| (k.as_str(), d.dependencies()))
        .collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut waves = Vec::new();
    while placed.len() < dependencies.len() {
        let wave: Vec<&str> = dependencies
            .iter()
            .filter(|(key, _)| !placed.contains(*key))
            .filter(|(_, on)| on.iter().all(|d| placed.contains(d.as_str())))
            .map(|(key, _)| *key)
            .collect();
        if wave.is_empty() {
            return Err(GraphError::Cycle(
                dependencies
                    .keys()
                    .filter(|k| !placed.contains(*k))
                    .map(|k| k.to_string())
                    .collect(),
            ));
        }
        placed.extend(&wave);
        waves.push(wave.into_iter().map(str::to_string).collect());
    }
    Ok(waves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arn_of(resource: &str) -> String {
        OutputRef::new(resource, "arn").token()
    }

    #[test]
    fn tokens_in_strings_become_outputs_where_they_stand() {
        let input = Input::of(&json!({
            "name": "plain",
            "policy": {"Resource": [format!("{}/logs/*", arn_of("deploy-v1.2"))]},
            "count": 3,
        }));
        let Input::Object(entries) = &input else {
            panic!("{input:?}")
        };
        assert!(matches!(entries[0], (ref k, Input::Value(_)) if k == "name"));
        assert_eq!(
            input.outputs(),
            BTreeSet::from([OutputRef::new("deploy-v1.2", "arn")])
        );
        let resolved = input
            .resolve(&|o| format!("arn:aws:x:::{}", o.resource))
            .unwrap();
        assert_eq!(
            resolved,
            json!({"name": "plain", "policy": {"Resource": ["arn:aws:x:::deploy-v1.2/logs/*"]}, "count": 3})
        );
        // Unknown outputs resolve as the engine's unknown.
        let unknown = Input::of(&json!(arn_of("key")))
            .resolve(&|_| UNKNOWN.to_string())
            .unwrap();
        assert_eq!(unknown, json!(UNKNOWN));
    }

    #[test]
    fn a_string_without_a_whole_token_is_literal() {
        for text in ["", "abc", "\u{E000}no end", "\u{E000}nodot\u{E001}"] {
            assert!(
                matches!(Input::of(&json!(text)), Input::Value(_)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn computed_inputs_see_their_outputs_and_may_hold_no_other() {
        let source = OutputRef::new("source", "arn");
        let topic = OutputRef::new("topic", "arn");
        let topic_token = topic.token();
        let input = Input::computed([source.clone(), topic.clone()], move |values| {
            let service = values.get(&source).split(':').nth(2).unwrap_or_default();
            json!({"Action": format!("{service}:Use"), "Resource": topic_token.clone()})
        });
        assert_eq!(input.outputs().len(), 2);
        let values = |o: &OutputRef| match o.resource.as_str() {
            "source" => "arn:aws:codeconnections:eu-west-1:1:connection/c".to_string(),
            _ => "arn:aws:sns:eu-west-1:1:t".to_string(),
        };
        assert_eq!(
            input.resolve(&values).unwrap(),
            json!({"Action": "codeconnections:Use", "Resource": "arn:aws:sns:eu-west-1:1:t"})
        );

        let stray = OutputRef::new("other", "arn");
        let token = stray.token();
        let sneaky = Input::computed([], move |_| json!(token.clone()));
        assert_eq!(
            sneaky.resolve(&values),
            Err(GraphError::UndeclaredOutput(stray))
        );
    }

    fn declared(key: &str, inputs: Json, uses: &[&str]) -> (String, Declaration) {
        let mut declaration = Declaration::custom("t:x:X", format!("c-{key}"), &inputs);
        declaration.uses = uses.iter().map(|u| u.to_string()).collect();
        (key.to_string(), declaration)
    }

    #[test]
    fn dependencies_are_uses_and_referred_outputs_registered_in_waves() {
        let graph = Graph::new([
            declared("key", json!({}), &[]),
            declared("bucket", json!({"keyArn": arn_of("key")}), &[]),
            declared("logs", json!({}), &["key"]),
            declared(
                "role",
                json!({"policy": [arn_of("bucket"), arn_of("key")]}),
                &["logs"],
            ),
        ])
        .unwrap();
        assert_eq!(
            graph.get("role").unwrap().dependencies(),
            BTreeSet::from(["bucket".into(), "key".into(), "logs".into()])
        );
        assert_eq!(
            graph.waves(),
            [
                vec!["key".to_string()],
                vec!["bucket".into(), "logs".into()],
                vec!["role".into()]
            ]
        );
    }

    #[test]
    fn a_graph_refuses_what_it_cannot_register() {
        assert_eq!(
            Graph::new([declared("a", json!({}), &[]), declared("a", json!({}), &[])]).err(),
            Some(GraphError::Duplicate("a".into()))
        );
        assert_eq!(
            Graph::new([declared("a", json!({"k": arn_of("b")}), &[])]).err(),
            Some(GraphError::Undeclared {
                resource: "a".into(),
                dependency: "b".into()
            })
        );
        let cycle = Graph::new([
            declared("a", json!({"k": arn_of("b")}), &[]),
            declared("b", json!({}), &["a"]),
            declared("c", json!({}), &[]),
        ]);
        assert_eq!(
            cycle.err(),
            Some(GraphError::Cycle(vec!["a".into(), "b".into()]))
        );
    }
}
