//! The lifecycle every resource kind shares.
//!
//! A kind declares what is particular to it ([`CustomResource`]): how it is named,
//! where it lives, which inputs replace it, what its calls to AWS are and
//! how its tags are listed and set. The lifecycle here does the rest the
//! same way for every kind: it chooses the name, adds the replace keys of
//! the name and the region, builds, checks, reads and changes the tags, and
//! turns any failure after the resource exists into a partial result that
//! carries its id, so that the engine records it.

use std::future::Future;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::op::Op;
use super::{
    is_unknown, merge_state, parse, to_json, CheckContext, CheckFailure, Failures, OpContext,
    ResourceError,
};
use crate::aws::failure::AwsFailure;
use crate::naming::{self, NameRule};
use crate::tags::{self, Tags};

/// How a kind names what it creates: `<prefix>-<suffix>` within the
/// service's limits (see [`crate::naming`]), chosen once by `check` and
/// kept while the input `namePrefix` stays the same.
pub struct AutoName {
    /// The input holding the name; `check` fills it when a program leaves
    /// it unset.
    pub property: &'static str,
    pub rule: &'static NameRule,
    /// What the resource is called in messages, e.g. `log group`.
    pub noun: &'static str,
    /// Where no other resource may have the name.
    pub unique_in: NameScope,
    /// What the service puts before every name, outside the rule's limits
    /// (`alias/` of KMS aliases).
    pub service_prefix: &'static str,
    /// What this product puts before every name prefix, within the rule's
    /// limits (`/securepipeline/` of log groups).
    pub product_prefix: &'static str,
    /// Whether a new name (or prefix) replaces the resource; false where
    /// the service renames in place, as a KMS key's alias.
    pub replaces: bool,
}

/// Where a name must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameScope {
    Account,
    Region,
}

impl AutoName {
    /// A resource with the name `check` chose and defaults for the rest.
    pub const fn new(
        property: &'static str,
        rule: &'static NameRule,
        noun: &'static str,
        unique_in: NameScope,
    ) -> Self {
        Self {
            property,
            rule,
            noun,
            unique_in,
            service_prefix: "",
            product_prefix: "",
            replaces: true,
        }
    }

    /// Why a create stopped when the name belongs to something it did not
    /// make, which is never adopted.
    pub fn taken(&self, name: &str) -> String {
        let scope = match self.unique_in {
            NameScope::Account => "this account",
            NameScope::Region => "this account and region",
        };
        let noun = self.noun;
        format!(
            "{noun} {name} already exists in {scope} and was not created by this resource, \
             so it is not adopted; choose another {}, or delete the {noun} if nothing uses it",
            self.property
        )
    }

    /// The name to use: the one given, the old one while the prefix is the
    /// same, or a new one.
    fn choose(&self, seed: &[u8], olds: Option<&Json>, news: &Json) -> String {
        if let Some(given) = text(news, self.property) {
            return given.to_string();
        }
        let old_name = olds
            .and_then(|olds| text(olds, self.property))
            .map(|name| name.strip_prefix(self.service_prefix).unwrap_or(name));
        let with_product = |prefix: &str| format!("{}{prefix}", self.product_prefix);
        let old_prefix = olds
            .and_then(|olds| text(olds, NAME_PREFIX))
            .map(with_product);
        let prefix = with_product(text(news, NAME_PREFIX).unwrap_or_default());
        let name = naming::choose(old_name, old_prefix.as_deref(), &prefix, self.rule, seed);
        format!("{}{name}", self.service_prefix)
    }

    fn check(&self, name: &str) -> Option<CheckFailure> {
        if is_unknown(name) {
            return None;
        }
        match name.strip_prefix(self.service_prefix) {
            Some(bare) => naming::check(self.property, bare, self.rule),
            None => Some(CheckFailure::new(
                self.property,
                format!(
                    "`{name}` must start with `{}`; leave it unset to have one chosen",
                    self.service_prefix
                ),
            )),
        }
    }
}

/// The input every kind's name starts from.
const NAME_PREFIX: &str = "namePrefix";
/// The input of a regional kind that names another region than the
/// provider's.
const REGION: &str = "region";
const TAGS: &str = "tags";

/// Where a kind's resources live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In one region: the input `region` where the kind has it, else the
    /// provider's. Nothing moves between regions, so a new region replaces.
    Regional,
    /// Once per account (IAM).
    Global,
}

/// The ownership marker of one create: a tag with a token only that create
/// knows, so that after an answer that was lost it recognises its own
/// resource and never takes another's for it.
pub struct CreateToken(String);

impl CreateToken {
    fn new() -> Self {
        Self(tags::new_create_token())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `tags` with the marker added.
    pub fn mark(&self, tags: &Tags) -> Tags {
        tags::with_create_token(tags, &self.0)
    }

    /// Whether `tags`, as AWS holds them, carry this create's marker.
    pub fn is_on(&self, tags: &Tags) -> bool {
        tags.get(tags::CREATE_TOKEN_KEY) == Some(&self.0)
    }
}

/// From one tag set to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// Tags to add or overwrite.
    pub set: Tags,
    /// Keys to remove.
    pub remove: Vec<String>,
    /// The whole new set, for services that replace it at once.
    pub all: Tags,
}

impl TagChange {
    pub fn between(old: &Tags, new: &Tags) -> Self {
        let (set, remove) = tags::changes(old, new);
        Self {
            set,
            remove,
            all: new.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// For services that tag and untag by key: `untag` the removed keys,
    /// then `tag` the ones set, each only when there are any.
    pub async fn by_key<A, B, U, UFut, T, TFut>(&self, untag: U, tag: T) -> Result<(), AwsFailure>
    where
        U: FnOnce(Vec<String>) -> UFut,
        UFut: Future<Output = Result<A, AwsFailure>>,
        T: FnOnce(Tags) -> TFut,
        TFut: Future<Output = Result<B, AwsFailure>>,
    {
        if !self.remove.is_empty() {
            untag(self.remove.clone()).await?;
        }
        if !self.set.is_empty() {
            tag(self.set.clone()).await?;
        }
        Ok(())
    }
}

/// What one resource kind declares and does; [`Lifecycle`] is the
/// lifecycle built on it.
///
/// Every kind's inputs have `namePrefix` and `tags`, and the input its
/// [`CustomResource::NAME`] names.
#[async_trait]
pub trait CustomResource: Send + Sync + 'static {
    /// The Pulumi type token, e.g. `securepipeline:aws:LogGroup`.
    const TYPE: &'static str;
    /// Desired configuration. Deserialized leniently from state, which also
    /// holds the outputs.
    type Inputs: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// What AWS assigns (ARNs, ids, status). Stored next to the inputs.
    type Outputs: Serialize + DeserializeOwned + Clone + Send + Sync;

    /// Output property names, reported as unknown during preview.
    const OUTPUT_KEYS: &'static [&'static str];
    /// Input property names whose change requires a new resource, besides
    /// the name and the region, which the lifecycle adds.
    const REPLACE_KEYS: &'static [&'static str];
    const NAME: AutoName;
    const PLACEMENT: Placement;
    /// An input naming an existing resource to use instead of creating
    /// one: such a resource is not the program's, so it is neither named,
    /// configured nor tagged, only used.
    const ADOPTS: Option<&'static str> = None;
    /// Whether the call that creates the resource carries its tags; when
    /// not, they are written once it is configured.
    const TAGS_ON_CREATE: bool = true;

    /// The kind's own checks and defaults, on inputs whose name is chosen;
    /// tags are checked afterwards. String inputs may hold the unknown
    /// sentinel during preview; checks skip them.
    fn validate(
        ctx: &CheckContext<'_>,
        olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    );

    /// Makes the resource (the call that creates it), returning its id.
    /// The create call carries `token` where the kind finds its own
    /// resource by it after a lost answer.
    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError>;

    /// Configures what [`CustomResource::create_resource`] made. A failure here
    /// leaves the resource with the engine, as partly created.
    async fn configure(
        _ctx: &Op<'_>,
        _id: &str,
        _inputs: &Self::Inputs,
        _outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        Ok(())
    }

    /// Reads the live resource but its tags; `None` when it no longer
    /// exists. The returned inputs describe what is live, so that refresh
    /// shows drift.
    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError>;

    /// Changes the live resource, its tags aside.
    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError>;

    /// Deletes the resource; succeeds when it is already gone.
    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<(), ResourceError>;

    /// The resource's tags as AWS holds them, ownership marker included;
    /// `None` when it no longer exists.
    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure>;

    /// Changes the resource's tags.
    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError>;
}

/// The lifecycle of a kind: what the engine (through
/// [`super::Typed`]), the component and tests call.
#[async_trait]
pub trait Lifecycle: CustomResource {
    /// Chooses the name, runs the kind's checks, checks the tags and adds
    /// the provider's.
    fn check(
        ctx: &CheckContext<'_>,
        olds: Option<&Self::Inputs>,
        news: Self::Inputs,
    ) -> Result<Self::Inputs, Vec<CheckFailure>>;

    async fn create(
        ctx: &OpContext<'_>,
        inputs: &Self::Inputs,
    ) -> Result<(String, Self::Outputs), ResourceError>;

    /// Reads the live resource; `None` when it no longer exists.
    async fn read(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError>;

    async fn update(
        ctx: &OpContext<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError>;

    /// Deletes the resource; succeeds when it is already gone.
    async fn delete(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<(), ResourceError>;
}

#[async_trait]
impl<K: CustomResource> Lifecycle for K {
    fn check(
        ctx: &CheckContext<'_>,
        olds: Option<&Self::Inputs>,
        news: Self::Inputs,
    ) -> Result<Self::Inputs, Vec<CheckFailure>> {
        check::<K>(ctx, olds, news)
    }

    async fn create(
        ctx: &OpContext<'_>,
        inputs: &Self::Inputs,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        create::<K>(ctx, inputs, None).await
    }

    async fn read(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        read::<K>(ctx, id, inputs).await
    }

    async fn update(
        ctx: &OpContext<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        update::<K>(ctx, id, olds, news, outputs, None).await
    }

    async fn delete(
        ctx: &OpContext<'_>,
        id: &str,
        inputs: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        delete::<K>(ctx, id, inputs, outputs, None).await
    }
}

fn text<'a>(json: &'a Json, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Json::as_str)
}

fn tags_in(json: &Json) -> Tags {
    json.get(TAGS)
        .cloned()
        .and_then(|tags| serde_json::from_value(tags).ok())
        .unwrap_or_default()
}

/// Whether the inputs name an existing resource for the kind to use.
fn adopts<K: CustomResource>(json: &Json) -> bool {
    K::ADOPTS.is_some_and(|key| json.get(key).is_some_and(|value| !value.is_null()))
}

/// Every input whose change replaces a resource of the kind.
pub fn replace_keys<K: CustomResource>() -> Vec<&'static str> {
    let name: &[&'static str] = if K::NAME.replaces {
        &[NAME_PREFIX, K::NAME.property]
    } else {
        &[]
    };
    let region: &[&'static str] = match K::PLACEMENT {
        Placement::Regional => &[REGION],
        Placement::Global => &[],
    };
    [name, K::REPLACE_KEYS, region].concat()
}

/// Typed inputs from JSON the lifecycle changed; what it writes is what
/// the kind's own type reads.
fn typed<T: DeserializeOwned>(json: &Json) -> Result<T, Vec<CheckFailure>> {
    parse(json).map_err(|failure| vec![failure])
}

pub(crate) fn check<K: CustomResource>(
    ctx: &CheckContext<'_>,
    olds: Option<&K::Inputs>,
    news: K::Inputs,
) -> Result<K::Inputs, Vec<CheckFailure>> {
    let mut failures = Failures::default();
    let mut json = to_json(&news);
    if !adopts::<K>(&json) {
        let olds = olds.map(to_json);
        let name = K::NAME.choose(ctx.random_seed, olds.as_ref(), &json);
        failures.extend(K::NAME.check(&name));
        if let Json::Object(map) = &mut json {
            map.insert(K::NAME.property.into(), Json::String(name));
        }
    }
    let mut news: K::Inputs = typed(&json)?;
    K::validate(ctx, olds, &mut news, &mut failures);
    let mut json = to_json(&news);
    let own = tags_in(&json);
    failures.extend(tags::validate(TAGS, &own));
    let defaults = ctx
        .aws
        .map(|aws| aws.default_tags.clone())
        .unwrap_or_default();
    if let Json::Object(map) = &mut json {
        map.insert(TAGS.into(), to_json(&tags::effective(&defaults, &own)));
    }
    failures.into_result(typed(&json)?)
}

/// The operation on the resource these inputs describe.
fn op<'a, K: CustomResource>(
    ctx: &OpContext<'a>,
    inputs: &Json,
    deadline: Option<Instant>,
) -> Op<'a> {
    Op::new(ctx, text(inputs, REGION), deadline)
        .named(&K::NAME, text(inputs, K::NAME.property).map(str::to_string))
}

pub(crate) async fn create<K: CustomResource>(
    ctx: &OpContext<'_>,
    inputs: &K::Inputs,
    deadline: Option<Instant>,
) -> Result<(String, K::Outputs), ResourceError> {
    let json = to_json(inputs);
    let op = op::<K>(ctx, &json, deadline);
    let token = CreateToken::new();
    let (id, mut outputs) = K::create_resource(&op, inputs, &token).await?;
    if adopts::<K>(&json) {
        return Ok((id, outputs));
    }
    // From here on the resource exists: a failure hands it to the engine.
    let configured = async {
        K::configure(&op, &id, inputs, &mut outputs).await?;
        if !K::TAGS_ON_CREATE {
            let change = TagChange::between(&Tags::new(), &tags_in(&json));
            K::write_tags(&op, &id, &change).await?;
        }
        Ok::<(), ResourceError>(())
    }
    .await;
    match configured {
        Ok(()) => Ok((id, outputs)),
        Err(cause) => Err(ResourceError::Partial {
            id,
            state: merge_state(&json, &to_json(&outputs)),
            cause: Box::new(cause),
        }),
    }
}

pub(crate) async fn read<K: CustomResource>(
    ctx: &OpContext<'_>,
    id: &str,
    inputs: &K::Inputs,
) -> Result<Option<(K::Inputs, K::Outputs)>, ResourceError> {
    let json = to_json(inputs);
    let op = op::<K>(ctx, &json, None);
    let Some((live, outputs)) = K::read_resource(&op, id, inputs).await? else {
        return Ok(None);
    };
    if adopts::<K>(&json) {
        return Ok(Some((live, outputs)));
    }
    let Some(tags) = K::read_tags(&op, id).await? else {
        return Ok(None);
    };
    let mut live = to_json(&live);
    if let Json::Object(map) = &mut live {
        map.insert(TAGS.into(), to_json(&tags::without_create_token(tags)));
    }
    let live = parse(&live).map_err(|f| {
        ResourceError::Failed(format!("reading {id}: {}: {}", f.property, f.reason))
    })?;
    Ok(Some((live, outputs)))
}

pub(crate) async fn update<K: CustomResource>(
    ctx: &OpContext<'_>,
    id: &str,
    olds: &K::Inputs,
    news: &K::Inputs,
    outputs: &K::Outputs,
    deadline: Option<Instant>,
) -> Result<K::Outputs, ResourceError> {
    let json = to_json(news);
    let op = op::<K>(ctx, &json, deadline);
    let outputs = K::update_resource(&op, id, olds, news, outputs).await?;
    if !adopts::<K>(&json) {
        let change = TagChange::between(&tags_in(&to_json(olds)), &tags_in(&json));
        if !change.is_empty() {
            K::write_tags(&op, id, &change).await?;
        }
    }
    Ok(outputs)
}

pub(crate) async fn delete<K: CustomResource>(
    ctx: &OpContext<'_>,
    id: &str,
    inputs: &K::Inputs,
    outputs: &K::Outputs,
    deadline: Option<Instant>,
) -> Result<(), ResourceError> {
    let op = op::<K>(ctx, &to_json(inputs), deadline);
    K::delete_resource(&op, id, inputs, outputs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOG_GROUP: AutoName = AutoName {
        product_prefix: "/securepipeline/",
        ..AutoName::new(
            "logGroupName",
            &naming::LOG_GROUP,
            "log group",
            NameScope::Region,
        )
    };
    const ALIAS: AutoName = AutoName {
        service_prefix: "alias/",
        replaces: false,
        ..AutoName::new(
            "aliasName",
            &naming::KMS_ALIAS,
            "KMS alias",
            NameScope::Region,
        )
    };

    #[test]
    fn a_name_is_chosen_within_the_prefixes_and_kept_while_the_prefix_is() {
        let news = json!({"namePrefix": "app-build"});
        let chosen = LOG_GROUP.choose(b"seed", None, &news);
        assert!(chosen.starts_with("/securepipeline/app-build-"), "{chosen}");
        assert_eq!(LOG_GROUP.check(&chosen), None);
        let olds = json!({"namePrefix": "app-build", "logGroupName": chosen});
        assert_eq!(LOG_GROUP.choose(b"other", Some(&olds), &news), chosen);
        let renamed = json!({"namePrefix": "app-test"});
        assert!(LOG_GROUP
            .choose(b"seed", Some(&olds), &renamed)
            .starts_with("/securepipeline/app-test-"));

        // The service's own prefix is outside the rule, and kept on reuse.
        let alias = ALIAS.choose(b"seed", None, &json!({"namePrefix": "app-key"}));
        assert!(alias.starts_with("alias/app-key-"), "{alias}");
        let olds = json!({"namePrefix": "app-key", "aliasName": alias});
        assert_eq!(
            ALIAS.choose(b"x", Some(&olds), &json!({"namePrefix": "app-key"})),
            alias
        );
        let bare = ALIAS.check("app-key").unwrap();
        assert_eq!(bare.property, "aliasName");
        assert!(bare.reason.contains("must start with `alias/`"), "{bare:?}");
    }

    #[test]
    fn a_name_given_is_used_and_checked() {
        let news = json!({"namePrefix": "p", "logGroupName": "/given"});
        assert_eq!(LOG_GROUP.choose(b"seed", None, &news), "/given");
        assert!(LOG_GROUP.check("/bad name").is_some());
        assert_eq!(LOG_GROUP.check(crate::protocol::json::UNKNOWN), None);
    }

    #[test]
    fn a_taken_name_says_where_and_what_to_do() {
        assert_eq!(
            LOG_GROUP.taken("/securepipeline/x"),
            "log group /securepipeline/x already exists in this account and region and was not \
             created by this resource, so it is not adopted; choose another logGroupName, or \
             delete the log group if nothing uses it"
        );
        let role = AutoName::new("roleName", &naming::IAM_ROLE, "role", NameScope::Account);
        assert!(role.taken("r").contains("in this account and was not"));
    }

    #[test]
    fn a_resource_is_ours_only_with_this_creates_marker() {
        let token = CreateToken::new();
        let marked = token.mark(&Tags::from([("team".to_string(), "a".to_string())]));
        assert!(token.is_on(&marked));
        assert!(!CreateToken::new().is_on(&marked));
        assert!(!token.is_on(&Tags::new()));
        assert_eq!(tags::without_create_token(marked)["team"], "a");
    }

    #[test]
    fn a_tag_change_sets_removes_and_knows_the_whole_set() {
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let change = TagChange::between(&tags(&[("a", "1"), ("b", "2")]), &tags(&[("a", "3")]));
        assert_eq!(change.set, tags(&[("a", "3")]));
        assert_eq!(change.remove, vec!["b"]);
        assert_eq!(change.all, tags(&[("a", "3")]));
        assert!(TagChange::between(&change.all, &change.all).is_empty());
    }
}
