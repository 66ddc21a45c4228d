//! `securepipeline:aws:Topic`: a KMS-encrypted SNS topic that only the
//! named EventBridge rules may publish to, with email subscriptions.
//!
//! The topic policy is computed here from the account, the topic and the
//! publishing rules, so no program can let anyone else publish. Refresh
//! reads the key, the policy, the subscriptions and the tags back, so
//! removed encryption, a widened policy or an added subscriber shows as
//! drift and the next update restores them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde::{Deserialize, Serialize};

use super::common::{check_arn, check_kms_key_arn, from_sdk_tags, sdk_tags};
use crate::aws::arn::{Arn, Arns};
use crate::aws::failure::AwsFailure;
use crate::aws::AwsContext;
use crate::iam::policy::Conditions;
use crate::iam::{Effect, PolicyDocument, Statement};
use crate::naming;
use crate::resource::{
    is_unknown, AutoName, CheckContext, CheckFailure, CreateToken, CustomResource, Failures,
    NameScope, Op, Placement, ResourceError, TagChange,
};
use crate::tags::Tags;

/// The product's limits: the component names one publishing rule, and a
/// topic policy stays small and reviewable; every subscriber must confirm
/// by hand, so a long list belongs in a mailing list.
const MAX_PUBLISHERS: usize = 10;
const MAX_EMAILS: usize = 20;
/// The longest address SMTP delivers to.
const EMAIL_MAX: usize = 254;

/// What the topic owner may do: manage the topic, never more.
/// What the account's root may do through the topic policy: manage the
/// topic, not publish or subscribe (principals of the account that should
/// publish, such as the pipeline's role for approvals, get `sns:Publish`
/// on this topic in their own policies).
const OWNER_ACTIONS: &[&str] = &[
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:ListSubscriptionsByTopic",
    "SNS:DeleteTopic",
    "SNS:AddPermission",
    "SNS:RemovePermission",
];

const KMS_ATTRIBUTE: &str = "KmsMasterKeyId";
const POLICY_ATTRIBUTE: &str = "Policy";
/// How SNS marks a subscription whose recipient has not confirmed it.
pub const PENDING: &str = "PendingConfirmation";
pub const CONFIRMED: &str = "Confirmed";

const PUBLISHER_EXAMPLE: &str = "arn:aws:events:eu-west-1:123456789012:rule/app-notify-k3j9a0qz";

pub struct Topic;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicInputs {
    pub name_prefix: String,
    /// Chosen by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    pub kms_key_arn: String,
    /// Rules (ARNs, or ARN patterns ending in `*` within this account's
    /// rules) allowed to publish, by `aws:SourceArn`.
    pub publisher_rule_arns: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    /// The topic policy; set by `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyDocument>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub endpoint: String,
    /// `PendingConfirmation` until the recipient confirms, then `Confirmed`.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicOutputs {
    pub arn: String,
    pub subscriptions: Vec<Subscription>,
    /// The policy in force. Also an input: `check` sets it when it knows
    /// the account; otherwise `create` computes it, and this output puts it
    /// in the state either way. Absent when the live policy is unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyDocument>,
}

/// The one policy a topic with these inputs has: the account manages it,
/// EventBridge publishes to it only for the named rules of this account,
/// and nobody publishes without TLS.
pub fn topic_policy(
    arns: &Arns<'_>,
    topic_name: &str,
    publisher_rule_arns: &[String],
) -> PolicyDocument {
    let topic_arn = arns.sns_topic(topic_name);
    let principal = |kind: &str, who: String| Some(BTreeMap::from([(kind.to_string(), vec![who])]));
    let mut conditions = Conditions::new();
    conditions.insert(
        "ArnEquals".into(),
        BTreeMap::from([("aws:SourceArn".to_string(), publisher_rule_arns.to_vec())]),
    );
    conditions.insert(
        "StringEquals".into(),
        BTreeMap::from([(
            "aws:SourceAccount".to_string(),
            vec![arns.account.to_string()],
        )]),
    );
    PolicyDocument::new(vec![
        Statement {
            sid: Some("OwnerManages".into()),
            effect: Effect::Allow,
            principal: principal("AWS", arns.account_root()),
            actions: OWNER_ACTIONS.iter().map(|a| (*a).to_string()).collect(),
            resources: vec![topic_arn.clone()],
            conditions: Conditions::new(),
        },
        Statement {
            sid: Some("AllowPipelineEvents".into()),
            effect: Effect::Allow,
            principal: principal("Service", "events.amazonaws.com".into()),
            actions: vec!["sns:Publish".into()],
            resources: vec![topic_arn.clone()],
            conditions,
        },
        Statement {
            sid: Some("DenyInsecureTransport".into()),
            effect: Effect::Deny,
            principal: principal("AWS", "*".into()),
            actions: vec!["sns:Publish".into()],
            resources: vec![topic_arn],
            conditions: BTreeMap::from([(
                "Bool".to_string(),
                BTreeMap::from([("aws:SecureTransport".to_string(), vec!["false".to_string()])]),
            )]),
        },
    ])
}

/// The policy to write. A policy given in the inputs must be exactly the
/// computed one.
fn policy_for(
    aws: &AwsContext,
    topic_name: &str,
    inputs: &TopicInputs,
) -> Result<PolicyDocument, ResourceError> {
    let computed = topic_policy(&aws.arns(), topic_name, &inputs.publisher_rule_arns);
    match &inputs.policy {
        Some(given) if *given != computed => Err(ResourceError::Failed(format!(
            "policy differs from the one computed for topic {topic_name} and publisherRuleArns; remove policy"
        ))),
        _ => Ok(computed),
    }
}

/// A publisher must be one exact EventBridge rule on the default bus of
/// the caller's partition, account and region: a name prefix would also
/// let rules that merely share it publish.
fn check_publisher(ctx: &CheckContext<'_>, property: &str, value: &str) -> Option<CheckFailure> {
    if is_unknown(value) {
        return None;
    }
    if let Some(failure) = check_arn(
        ctx,
        property,
        value,
        &["events"],
        "rule/",
        PUBLISHER_EXAMPLE,
        true,
    ) {
        return Some(failure);
    }
    let arn = value.parse::<Arn>().ok()?;
    let wildcard = |s: &str| s.contains(['*', '?']);
    let rule = arn.resource.strip_prefix("rule/").unwrap_or(&arn.resource);
    let identity = [&arn.partition, &arn.service, &arn.region, &arn.account];
    if identity.iter().any(|part| wildcard(part)) || wildcard(rule) || rule.is_empty() {
        return Some(CheckFailure::new(
            property,
            format!("`{value}` has a wildcard; name the exact rule, e.g. {PUBLISHER_EXAMPLE}"),
        ));
    }
    naming::check(property, rule, &naming::EVENT_RULE)
}

fn is_email(value: &str) -> bool {
    value.chars().count() <= EMAIL_MAX
        && !value.contains(char::is_whitespace)
        && value.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

/// Addresses are not echoed: a program may hold them as secrets. The
/// component checks its own input with this too, at its own `property`.
pub fn check_emails(property: &str, emails: &[String]) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    if emails.len() > MAX_EMAILS {
        failures.push(CheckFailure::new(
            property,
            format!("{} addresses given; at most {MAX_EMAILS} (each must confirm by hand), so use a mailing list", emails.len()),
        ));
    }
    for (index, email) in emails.iter().enumerate() {
        if is_unknown(email) {
            continue;
        }
        let at = format!("{property}[{index}]");
        if !is_email(email) {
            failures.push(CheckFailure::new(
                &at,
                "is not an email address; give one like ops@example.com",
            ));
        }
        if let Some(first) = emails[..index]
            .iter()
            .position(|other| other.eq_ignore_ascii_case(email))
        {
            failures.push(CheckFailure::new(
                &at,
                format!("repeats {property}[{first}]; list each address once"),
            ));
        }
    }
    failures
}

/// What a subscription's ARN (`PendingConfirmation` when SNS withholds it)
/// and its `PendingConfirmation` attribute say about it.
pub fn status(subscription_arn: &str, pending_attribute: Option<&str>) -> &'static str {
    if subscription_arn == PENDING || pending_attribute == Some("true") {
        PENDING
    } else {
        CONFIRMED
    }
}

/// SNS's answers for a topic that does not exist.
const GONE: &[&str] = &["NotFound", "ResourceNotFound"];

#[async_trait]
impl CustomResource for Topic {
    const TYPE: &'static str = "securepipeline:aws:Topic";
    type Inputs = TopicInputs;
    type Outputs = TopicOutputs;
    // `policy` is left out: when `check` computed it, preview shows the real
    // document instead of an unknown.
    const OUTPUT_KEYS: &'static [&'static str] = &["arn", "subscriptions"];
    const REPLACE_KEYS: &'static [&'static str] = &[];
    const NAME: AutoName =
        AutoName::new("topicName", &naming::SNS_TOPIC, "topic", NameScope::Region);
    const PLACEMENT: Placement = Placement::Regional;

    fn validate(
        ctx: &CheckContext<'_>,
        _olds: Option<&Self::Inputs>,
        news: &mut Self::Inputs,
        failures: &mut Failures,
    ) {
        let name = news.topic_name.clone().unwrap_or_default();
        failures.extend(check_kms_key_arn(ctx, "kmsKeyArn", &news.kms_key_arn));

        let publishers = &news.publisher_rule_arns;
        if publishers.is_empty() || publishers.len() > MAX_PUBLISHERS {
            failures.push(
                "publisherRuleArns",
                format!(
                    "name 1 to {MAX_PUBLISHERS} EventBridge rules allowed to publish, e.g. [\"{PUBLISHER_EXAMPLE}\"]; {} given",
                    publishers.len()
                ),
            );
        }
        for (index, arn) in publishers.iter().enumerate() {
            let property = format!("publisherRuleArns[{index}]");
            failures.extend(check_publisher(ctx, &property, arn));
            if publishers[..index].contains(arn) {
                failures.push(
                    property,
                    format!("`{arn}` is listed twice; list each rule once"),
                );
            }
        }
        failures.extend(check_emails("emails", &news.emails));

        if let Some(aws) = ctx.aws {
            let computed = topic_policy(&aws.arns(), &name, publishers);
            let known = !is_unknown(&name) && !publishers.iter().any(|arn| is_unknown(arn));
            if news
                .policy
                .as_ref()
                .is_some_and(|given| known && *given != computed)
            {
                failures.push(
                    "policy",
                    "the topic policy is computed from the account and publisherRuleArns, so no program can let anyone else publish; remove policy",
                );
            }
            news.policy = Some(computed);
        }
    }

    async fn create_resource(
        ctx: &Op<'_>,
        inputs: &Self::Inputs,
        _token: &CreateToken,
    ) -> Result<(String, Self::Outputs), ResourceError> {
        let sns = &ctx.clients().sns;
        let name = ctx.name()?;
        // CreateTopic answers with the topic of that name if one exists: one
        // that exists before this create belongs to something else and is
        // never taken over. (Repeating CreateTopic after a lost answer is
        // safe: it names the topic this create made.)
        let arn = ctx.arns().sns_topic(name);
        let existing = ctx
            .find(format!("looking for topic {name}"), GONE, || {
                sns.get_topic_attributes().topic_arn(&arn).send()
            })
            .await?;
        if existing.is_some() {
            return Err(ResourceError::Failed(Self::NAME.taken(name)));
        }
        let policy = policy_for(ctx.aws, name, inputs)?;
        let tags = aws_tags(&inputs.tags)?;
        let created = ctx
            .call(format!("creating topic {name}"), || {
                sns.create_topic()
                    .name(name)
                    .attributes(KMS_ATTRIBUTE, &inputs.kms_key_arn)
                    .attributes(POLICY_ATTRIBUTE, policy.to_compact_json())
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let arn = created.topic_arn().map_or(arn, str::to_string);
        let outputs = TopicOutputs {
            arn: arn.clone(),
            subscriptions: Vec::new(),
            policy: Some(policy),
        };
        Ok((arn, outputs))
    }

    async fn configure(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
        outputs: &mut Self::Outputs,
    ) -> Result<(), ResourceError> {
        for (index, email) in inputs.emails.iter().enumerate() {
            let status = subscribe(ctx, id, index, email).await?;
            outputs.subscriptions.push(Subscription {
                endpoint: email.clone(),
                status: status.to_string(),
            });
        }
        warn_pending(ctx, ctx.name()?, &outputs.subscriptions);
        Ok(())
    }

    async fn read_resource(
        ctx: &Op<'_>,
        id: &str,
        inputs: &Self::Inputs,
    ) -> Result<Option<(Self::Inputs, Self::Outputs)>, ResourceError> {
        let sns = &ctx.clients().sns;
        let Some(attributes) = ctx
            .find(format!("reading topic {id}"), GONE, || {
                sns.get_topic_attributes().topic_arn(id).send()
            })
            .await?
        else {
            return Ok(None);
        };
        let attributes = attributes.attributes.unwrap_or_default();
        // A policy that is not a policy document (e.g. `"Principal": "*"`)
        // reads as absent: drift the next update replaces.
        let policy = match attributes
            .get(POLICY_ATTRIBUTE)
            .map(|text| PolicyDocument::parse_aws(text))
        {
            Some(Ok(policy)) => Some(policy),
            Some(Err(reason)) => {
                ctx.log.warn(
                    ctx.urn,
                    &format!("the policy of topic {id} is not one SecurePipeline writes ({reason}); the next update replaces it"),
                );
                None
            }
            None => None,
        };
        let Some(live) = live_subscriptions(ctx, id).await? else {
            return Ok(None);
        };

        let subscriptions = in_input_order(live, &inputs.emails);
        let mut live_inputs = inputs.clone();
        live_inputs.topic_name = id.rsplit(':').next().map(str::to_string);
        // Encryption removed reads as an empty key, which check rejects and
        // the next update restores.
        live_inputs.kms_key_arn = attributes.get(KMS_ATTRIBUTE).cloned().unwrap_or_default();
        live_inputs.policy = policy.clone();
        live_inputs.emails = subscriptions.iter().map(|s| s.endpoint.clone()).collect();
        let outputs = TopicOutputs {
            arn: id.to_string(),
            subscriptions,
            policy,
        };
        Ok(Some((live_inputs, outputs)))
    }

    async fn update_resource(
        ctx: &Op<'_>,
        id: &str,
        olds: &Self::Inputs,
        news: &Self::Inputs,
        outputs: &Self::Outputs,
    ) -> Result<Self::Outputs, ResourceError> {
        let sns = &ctx.clients().sns;
        let name = ctx.name()?;
        let policy = policy_for(ctx.aws, name, news)?;
        if olds.kms_key_arn != news.kms_key_arn {
            set_attribute(ctx, id, KMS_ATTRIBUTE, news.kms_key_arn.clone()).await?;
        }
        if olds.policy.as_ref().or(outputs.policy.as_ref()) != Some(&policy) {
            set_attribute(ctx, id, POLICY_ATTRIBUTE, policy.to_compact_json()).await?;
        }
        // Compared with what is live, so a subscriber added or removed out
        // of band is corrected even without a refresh.
        let live = live_subscriptions(ctx, id).await?.ok_or_else(|| {
            ResourceError::Failed(format!("topic {id} no longer exists; run `pulumi refresh`"))
        })?;
        for (index, email) in news.emails.iter().enumerate() {
            if !live.iter().any(|s| s.endpoint == *email) {
                subscribe(ctx, id, index, email).await?;
            }
        }
        for removed in live.iter().filter(|s| !news.emails.contains(&s.endpoint)) {
            // SNS cannot unsubscribe a pending subscription; it deletes it
            // itself when the recipient has not confirmed within three days.
            if removed.status != CONFIRMED {
                continue;
            }
            ctx.delete(
                format!("unsubscribing a removed email address from topic {id}"),
                GONE,
                || sns.unsubscribe().subscription_arn(&removed.arn).send(),
            )
            .await?;
        }
        let live = live_subscriptions(ctx, id).await?.unwrap_or_default();
        let subscriptions: Vec<Subscription> = in_input_order(live, &news.emails)
            .into_iter()
            .filter(|s| news.emails.contains(&s.endpoint))
            .map(|s| Subscription {
                endpoint: s.endpoint,
                status: s.status,
            })
            .collect();
        warn_pending(ctx, name, &subscriptions);
        Ok(TopicOutputs {
            arn: outputs.arn.clone(),
            subscriptions,
            policy: Some(policy),
        })
    }

    async fn delete_resource(
        ctx: &Op<'_>,
        id: &str,
        _inputs: &Self::Inputs,
        _outputs: &Self::Outputs,
    ) -> Result<(), ResourceError> {
        let sns = &ctx.clients().sns;
        // Deleting a topic deletes its subscriptions too.
        ctx.delete(format!("deleting topic {id}"), GONE, || {
            sns.delete_topic().topic_arn(id).send()
        })
        .await?;
        Ok(())
    }

    async fn read_tags(ctx: &Op<'_>, id: &str) -> Result<Option<Tags>, AwsFailure> {
        let sns = &ctx.clients().sns;
        let listed = ctx
            .find(format!("reading tags of topic {id}"), GONE, || {
                sns.list_tags_for_resource().resource_arn(id).send()
            })
            .await?;
        Ok(listed.map(|listed| from_sdk_tags(listed.tags(), |tag| (tag.key(), tag.value()))))
    }

    async fn write_tags(ctx: &Op<'_>, id: &str, change: &TagChange) -> Result<(), ResourceError> {
        let sns = &ctx.clients().sns;
        let set = aws_tags(&change.set)?;
        change
            .by_key(
                |keys| {
                    ctx.call(format!("untagging topic {id}"), move || {
                        sns.untag_resource()
                            .resource_arn(id)
                            .set_tag_keys(Some(keys.clone()))
                            .send()
                    })
                },
                |_| {
                    ctx.call(format!("tagging topic {id}"), || {
                        sns.tag_resource()
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

fn aws_tags(tags: &Tags) -> Result<Vec<Tag>, ResourceError> {
    sdk_tags(tags, |key, value| {
        Tag::builder().key(key).value(value).build()
    })
}

async fn set_attribute(
    ctx: &Op<'_>,
    topic_arn: &str,
    attribute: &str,
    value: String,
) -> Result<(), AwsFailure> {
    let sns = &ctx.clients().sns;
    ctx.call(format!("setting {attribute} of topic {topic_arn}"), || {
        sns.set_topic_attributes()
            .topic_arn(topic_arn)
            .attribute_name(attribute)
            .attribute_value(value.clone())
            .send()
    })
    .await
    .map(drop)
}

/// Subscribes one address (`emails[index]`, named by index only) and
/// returns the subscription's status.
async fn subscribe(
    ctx: &Op<'_>,
    topic_arn: &str,
    index: usize,
    email: &str,
) -> Result<&'static str, AwsFailure> {
    let sns = &ctx.clients().sns;
    let subscribed = ctx
        .call(
            format!("subscribing emails[{index}] to topic {topic_arn}"),
            || {
                sns.subscribe()
                    .topic_arn(topic_arn)
                    .protocol("email")
                    .endpoint(email)
                    .return_subscription_arn(true)
                    .send()
            },
        )
        .await?;
    subscription_status(
        ctx,
        subscribed.subscription_arn().unwrap_or(PENDING),
        &format!("emails[{index}] to topic {topic_arn}"),
    )
    .await
}

/// The status of the subscription of `whom` (an address is not named: a
/// program may hold it as a secret).
async fn subscription_status(
    ctx: &Op<'_>,
    subscription_arn: &str,
    whom: &str,
) -> Result<&'static str, AwsFailure> {
    if subscription_arn == PENDING {
        return Ok(PENDING);
    }
    let sns = &ctx.clients().sns;
    let found = ctx
        .call(format!("reading the subscription of {whom}"), || {
            sns.get_subscription_attributes()
                .subscription_arn(subscription_arn)
                .send()
        })
        .await?;
    let pending = found
        .attributes()
        .and_then(|a| a.get(PENDING))
        .map(String::as_str);
    Ok(status(subscription_arn, pending))
}

/// A live email subscription.
#[derive(Debug, Clone, PartialEq)]
struct LiveSubscription {
    endpoint: String,
    arn: String,
    status: String,
}

/// Every email subscription of the topic, or `None` when the topic is gone.
/// Subscriptions by other protocols are reported, not managed.
async fn live_subscriptions(
    ctx: &Op<'_>,
    topic_arn: &str,
) -> Result<Option<Vec<LiveSubscription>>, AwsFailure> {
    let sns = &ctx.clients().sns;
    let listed = ctx
        .find(
            format!("reading subscriptions of topic {topic_arn}"),
            GONE,
            || {
                sns.list_subscriptions_by_topic()
                    .topic_arn(topic_arn)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
            },
        )
        .await?;
    let Some(listed) = listed else {
        return Ok(None);
    };
    let others = listed
        .iter()
        .filter(|s| s.protocol() != Some("email"))
        .count();
    if others > 0 {
        ctx.log.warn(
            ctx.urn,
            &format!("{others} subscription(s) to topic {topic_arn} use a protocol other than email; SecurePipeline does not manage them, so remove any you did not add on purpose"),
        );
    }
    let mut subscriptions = Vec::new();
    for listed in listed.iter().filter(|s| s.protocol() == Some("email")) {
        let arn = listed.subscription_arn().unwrap_or(PENDING).to_string();
        let status =
            subscription_status(ctx, &arn, &format!("a subscriber of topic {topic_arn}")).await?;
        subscriptions.push(LiveSubscription {
            endpoint: listed.endpoint().unwrap_or_default().to_string(),
            arn,
            status: status.to_string(),
        });
    }
    Ok(Some(subscriptions))
}

/// Live subscriptions in the order the inputs list their addresses, others
/// after by address, so that an unchanged topic reads back equal to its
/// inputs.
fn in_input_order(mut live: Vec<LiveSubscription>, emails: &[String]) -> Vec<Subscription> {
    live.sort_by_cached_key(|s| {
        let position = emails
            .iter()
            .position(|e| *e == s.endpoint)
            .unwrap_or(usize::MAX);
        (position, s.endpoint.clone())
    });
    live.into_iter()
        .map(|s| Subscription {
            endpoint: s.endpoint,
            status: s.status,
        })
        .collect()
}

/// Says how many subscriptions still wait for their recipient (the count
/// only: addresses stay out of logs).
fn warn_pending(ctx: &Op<'_>, topic_name: &str, subscriptions: &[Subscription]) {
    let pending = subscriptions.iter().filter(|s| s.status == PENDING).count();
    if pending > 0 {
        ctx.log.warn(
            ctx.urn,
            &format!("{pending} email subscription(s) to {topic_name} are pending: each recipient must click the confirmation link AWS sent"),
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::Endpoints;
    use crate::iam::lint;
    use crate::resource::Lifecycle;
    use crate::tags;
    use serde_json::json;

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const RULES: &str = "arn:aws:events:eu-west-1:123456789012:rule/app-notify-k3j9a0qz";

    pub(crate) fn inputs() -> TopicInputs {
        TopicInputs {
            name_prefix: "app-notify".into(),
            topic_name: None,
            kms_key_arn: KEY.into(),
            publisher_rule_arns: vec![RULES.into()],
            emails: vec!["ops@example.com".into()],
            policy: None,
            tags: Tags::new(),
        }
    }

    fn aws() -> AwsContext {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsContext::new(
            sdk,
            Endpoints::default(),
            "123456789012".into(),
            "aws".into(),
            "eu-west-1".into(),
            Default::default(),
        )
    }

    fn check_with(
        aws: Option<&AwsContext>,
        olds: Option<&TopicInputs>,
        news: TopicInputs,
    ) -> Result<TopicInputs, Vec<CheckFailure>> {
        let ctx = CheckContext {
            name: "notifications",
            random_seed: b"seed",
            aws,
        };
        Topic::check(&ctx, olds, news)
    }

    fn properties(news: TopicInputs) -> Vec<String> {
        check_with(None, None, news)
            .unwrap_err()
            .into_iter()
            .map(|f| f.property)
            .collect()
    }

    #[test]
    fn chooses_a_name_and_adds_managed_tags() {
        let checked = check_with(None, None, inputs()).unwrap();
        let name = checked.topic_name.clone().unwrap();
        assert!(name.starts_with("app-notify-"), "{name}");
        assert_eq!(checked.tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);
        let again = check_with(None, Some(&checked), inputs()).unwrap();
        assert_eq!(again.topic_name, checked.topic_name);
        // Without the account the policy waits for create.
        assert_eq!(checked.policy, None);
    }

    #[test]
    fn computes_the_exact_policy() {
        let aws = aws();
        let checked = check_with(Some(&aws), None, inputs()).unwrap();
        let name = checked.topic_name.clone().unwrap();
        let topic = format!("arn:aws:sns:eu-west-1:123456789012:{name}");
        assert_eq!(
            serde_json::to_value(checked.policy.as_ref().unwrap()).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "OwnerManages", "Effect": "Allow",
                 "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]},
                 "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes",
                            "SNS:ListSubscriptionsByTopic", "SNS:DeleteTopic",
                            "SNS:AddPermission", "SNS:RemovePermission"],
                 "Resource": [topic]},
                {"Sid": "AllowPipelineEvents", "Effect": "Allow",
                 "Principal": {"Service": ["events.amazonaws.com"]},
                 "Action": ["sns:Publish"],
                 "Resource": [topic],
                 "Condition": {"ArnEquals": {"aws:SourceArn": [RULES]},
                               "StringEquals": {"aws:SourceAccount": ["123456789012"]}}},
                {"Sid": "DenyInsecureTransport", "Effect": "Deny",
                 "Principal": {"AWS": ["*"]},
                 "Action": ["sns:Publish"],
                 "Resource": [topic],
                 "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}
            ]})
        );
        // Apart from naming principals (a resource policy must), every
        // statement passes the permissions linter.
        let mut permissions = checked.policy.clone().unwrap();
        permissions
            .statements
            .iter_mut()
            .for_each(|s| s.principal = None);
        assert_eq!(lint::permissions(&permissions), Vec::<String>::new());
        // Checking the checked inputs again changes nothing.
        assert_eq!(
            check_with(Some(&aws), Some(&checked), checked.clone()).unwrap(),
            checked
        );
    }

    #[test]
    fn a_given_policy_must_be_the_computed_one() {
        let aws = aws();
        let mut wider = check_with(Some(&aws), None, inputs())
            .unwrap()
            .policy
            .unwrap();
        wider.statements[1].conditions.clear();
        let failures = check_with(
            Some(&aws),
            None,
            TopicInputs {
                policy: Some(wider.clone()),
                ..inputs()
            },
        )
        .unwrap_err();
        assert_eq!(failures[0].property, "policy");
        // Create refuses it too when check could not compare.
        let checked = TopicInputs {
            topic_name: Some("t".into()),
            policy: Some(wider),
            ..inputs()
        };
        assert!(policy_for(&aws, "t", &checked).is_err());
    }

    #[test]
    fn publishers_are_exact_rules_of_this_account() {
        let exact = "arn:aws:events:eu-west-1:123456789012:rule/app-notify-abcd1234";
        assert!(check_with(
            None,
            None,
            TopicInputs {
                publisher_rule_arns: vec![exact.into()],
                ..inputs()
            }
        )
        .is_ok());
        for bad in [
            "arn:aws:events:eu-west-1:123456789012:rule/*",
            "arn:aws:events:eu-west-1:123456789012:rule/app-*-x",
            "arn:aws:events:eu-west-1:123456789012:rule/app-notify-**",
            // A prefix: stage `dev`'s rule pattern would match `dev-eu`'s.
            "arn:aws:events:eu-west-1:123456789012:rule/app-notify-*",
            "arn:aws:events:*:123456789012:rule/app-notify-*",
            "arn:aws:events:eu-west-1:123456789012:rule/bus/app-notify-*",
            "arn:aws:sns:eu-west-1:123456789012:app-notify",
            "rule/app-notify-*",
        ] {
            let news = TopicInputs {
                publisher_rule_arns: vec![bad.into()],
                ..inputs()
            };
            assert_eq!(properties(news), vec!["publisherRuleArns[0]"], "{bad}");
        }
        assert_eq!(
            properties(TopicInputs {
                publisher_rule_arns: vec![],
                ..inputs()
            }),
            vec!["publisherRuleArns"]
        );
        let eleven = (0..11).map(|i| format!("{RULES}{i}")).collect();
        assert_eq!(
            properties(TopicInputs {
                publisher_rule_arns: eleven,
                ..inputs()
            }),
            vec!["publisherRuleArns"]
        );
        let twice = TopicInputs {
            publisher_rule_arns: vec![RULES.into(), RULES.into()],
            ..inputs()
        };
        assert_eq!(properties(twice), vec!["publisherRuleArns[1]"]);

        let aws = aws();
        let elsewhere = TopicInputs {
            publisher_rule_arns: vec![RULES.replace("123456789012", "210987654321")],
            ..inputs()
        };
        let failures = check_with(Some(&aws), None, elsewhere).unwrap_err();
        assert_eq!(failures[0].property, "publisherRuleArns[0]");
        assert!(
            failures[0].reason.contains("account"),
            "{}",
            failures[0].reason
        );
    }

    #[test]
    fn emails_are_valid_unique_and_few_and_never_echoed() {
        let news = TopicInputs {
            emails: vec![
                "ops@example.com".into(),
                "not-an-address".into(),
                "OPS@example.com".into(),
            ],
            ..inputs()
        };
        let failures = check_with(None, None, news).unwrap_err();
        let failed: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(failed, vec!["emails[1]", "emails[2]"]);
        assert!(failures
            .iter()
            .all(|f| !f.reason.contains("not-an-address") && !f.reason.contains("OPS@")));
        let many = (0..21).map(|i| format!("ops{i}@example.com")).collect();
        assert_eq!(
            properties(TopicInputs {
                emails: many,
                ..inputs()
            }),
            vec!["emails"]
        );
        assert!(check_with(
            None,
            None,
            TopicInputs {
                emails: vec![],
                ..inputs()
            }
        )
        .is_ok());
    }

    #[test]
    fn only_encrypted_topics() {
        assert_eq!(
            properties(TopicInputs {
                kms_key_arn: "alias/aws/sns".into(),
                ..inputs()
            }),
            vec!["kmsKeyArn"]
        );
        assert_eq!(
            properties(TopicInputs {
                kms_key_arn: String::new(),
                ..inputs()
            }),
            vec!["kmsKeyArn"]
        );
    }

    #[test]
    fn pending_until_confirmed() {
        assert_eq!(status(PENDING, None), PENDING);
        assert_eq!(
            status("arn:aws:sns:eu-west-1:123456789012:t:1", Some("true")),
            PENDING
        );
        assert_eq!(
            status("arn:aws:sns:eu-west-1:123456789012:t:1", Some("false")),
            CONFIRMED
        );
    }

    #[test]
    fn subscriptions_follow_the_input_order() {
        let live = |endpoint: &str| LiveSubscription {
            endpoint: endpoint.into(),
            arn: PENDING.into(),
            status: PENDING.into(),
        };
        let ordered = in_input_order(
            vec![
                live("z@example.com"),
                live("b@example.com"),
                live("a@example.com"),
            ],
            &["b@example.com".to_string(), "a@example.com".to_string()],
        );
        let endpoints: Vec<_> = ordered.iter().map(|s| s.endpoint.as_str()).collect();
        assert_eq!(
            endpoints,
            vec!["b@example.com", "a@example.com", "z@example.com"]
        );
    }
}
