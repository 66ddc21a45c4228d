//! The provider's custom resource kinds, one file each. SecurePipeline is
//! built from them; each kind's `check` enforces its own invariants, since
//! a program may register a child directly or rewrite its inputs.

pub mod access_log_bucket;
pub mod artifact_bucket;
pub mod bucket;
pub mod build_project;
pub mod common;
pub mod connection;
pub mod event_rule;
pub mod key;
pub mod log_group;
pub mod pipeline;
pub mod role;
pub mod stage_conditions;
pub mod topic;
pub mod user_key;

use std::collections::HashMap;

use crate::resource::{CustomResource, ResourceHandler, Typed};

fn entry<R: CustomResource>() -> (&'static str, Box<dyn ResourceHandler>) {
    (R::TYPE, Box::new(Typed::<R>::default()))
}

/// Every kind, by type token.
pub fn registry() -> HashMap<&'static str, Box<dyn ResourceHandler>> {
    HashMap::from([
        entry::<log_group::LogGroup>(),
        entry::<key::Key>(),
        entry::<artifact_bucket::ArtifactBucket>(),
        entry::<access_log_bucket::AccessLogBucket>(),
        entry::<build_project::BuildProject>(),
        entry::<pipeline::Pipeline>(),
        entry::<event_rule::EventRule>(),
        entry::<topic::Topic>(),
        entry::<role::Role>(),
        entry::<connection::Connection>(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::value::tests::{any_map, fuzz_config, near};
    use crate::protocol::value::{PropertyMap, PropertyValue};
    use crate::resource::{from_typed, to_json, CheckContext};
    use crate::tags;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// A valid input of every kind, as the engine would send it.
    fn valid_inputs() -> Vec<(&'static str, PropertyMap)> {
        fn map<T: serde::Serialize>(inputs: &T) -> PropertyMap {
            from_typed(&to_json(inputs), &BTreeSet::new())
        }
        vec![
            (log_group::LogGroup::TYPE, map(&log_group::tests::inputs())),
            (key::Key::TYPE, map(&key::tests::inputs())),
            (
                artifact_bucket::ArtifactBucket::TYPE,
                map(&artifact_bucket::tests::inputs()),
            ),
            (
                access_log_bucket::AccessLogBucket::TYPE,
                map(&access_log_bucket::tests::inputs()),
            ),
            (
                build_project::BuildProject::TYPE,
                map(&build_project::tests::inputs()),
            ),
            (pipeline::Pipeline::TYPE, map(&pipeline::tests::inputs())),
            (
                event_rule::EventRule::TYPE,
                map(&event_rule::tests::notify()),
            ),
            (
                event_rule::EventRule::TYPE,
                map(&event_rule::tests::schedule()),
            ),
            (topic::Topic::TYPE, map(&topic::tests::inputs())),
            (role::Role::TYPE, map(&role::tests::inputs())),
            (
                connection::Connection::TYPE,
                map(&connection::tests::inputs()),
            ),
        ]
    }

    /// A kind, a valid input of it, and an input to throw at it: arbitrary,
    /// or one change away from valid.
    fn cases() -> impl Strategy<Value = (&'static str, PropertyMap, PropertyMap)> {
        let kinds = valid_inputs();
        (0..kinds.len()).prop_flat_map(move |index| {
            let (kind, valid) = kinds[index].clone();
            let names = valid.keys().cloned().collect();
            let news = prop_oneof![1 => any_map(names), 3 => near(valid.clone())];
            (Just(kind), Just(valid), news)
        })
    }

    const CTX: CheckContext<'static> = CheckContext {
        name: "app",
        random_seed: b"seed",
        aws: None,
    };

    #[test]
    fn every_valid_input_checks() {
        let registry = registry();
        for (kind, valid) in valid_inputs() {
            assert!(registry[kind].check(&CTX, None, &valid).is_ok(), "{kind}");
        }
    }

    /// The tag a create marks what it makes with is the provider's: a
    /// program setting it would make a create take another's resource for
    /// its own, and refresh never show it.
    #[test]
    fn no_kind_takes_the_ownership_marker_as_a_tag() {
        let registry = registry();
        let marker = PropertyValue::Object(PropertyMap::from([(
            tags::CREATE_TOKEN_KEY.to_string(),
            PropertyValue::String("0123456789abcdef".into()),
        )]));
        for (kind, mut inputs) in valid_inputs() {
            inputs.insert("tags".into(), marker.clone());
            let failures = registry[kind].check(&CTX, None, &inputs).unwrap_err();
            let properties: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
            assert_eq!(
                properties,
                vec![format!("tags.{}", tags::CREATE_TOKEN_KEY)],
                "{kind}"
            );
        }
    }

    /// Nothing in AWS moves between regions: a new region replaces every
    /// kind that lives in one, and no other.
    #[test]
    fn a_region_change_replaces_every_regional_kind() {
        let registry = registry();
        let regional = |kind: &str| kind != role::Role::TYPE;
        for (kind, valid) in valid_inputs() {
            let mut olds = valid.clone();
            olds.insert("region".into(), PropertyValue::String("eu-west-1".into()));
            let mut news = valid;
            news.insert("region".into(), PropertyValue::String("us-west-2".into()));
            let diff = registry[kind].diff(&olds, &news);
            assert_eq!(diff.changed, vec!["region"], "{kind}");
            assert_eq!(
                diff.replaces == vec!["region"],
                regional(kind),
                "{kind}: {diff:?}"
            );
        }
    }

    /// Every kind's name is chosen by the lifecycle into the input its
    /// declaration names, and kept on the next check.
    #[test]
    fn every_kind_is_named_where_it_declares() {
        let registry = registry();
        let names = [
            (
                log_group::LogGroup::TYPE,
                log_group::LogGroup::NAME.property,
            ),
            (key::Key::TYPE, key::Key::NAME.property),
            (
                artifact_bucket::ArtifactBucket::TYPE,
                artifact_bucket::ArtifactBucket::NAME.property,
            ),
            (
                access_log_bucket::AccessLogBucket::TYPE,
                access_log_bucket::AccessLogBucket::NAME.property,
            ),
            (
                build_project::BuildProject::TYPE,
                build_project::BuildProject::NAME.property,
            ),
            (pipeline::Pipeline::TYPE, pipeline::Pipeline::NAME.property),
            (
                event_rule::EventRule::TYPE,
                event_rule::EventRule::NAME.property,
            ),
            (topic::Topic::TYPE, topic::Topic::NAME.property),
            (role::Role::TYPE, role::Role::NAME.property),
            (
                connection::Connection::TYPE,
                connection::Connection::NAME.property,
            ),
        ];
        assert_eq!(names.len(), registry.len());
        for (kind, valid) in valid_inputs() {
            let property = names.iter().find(|(k, _)| *k == kind).unwrap().1;
            assert!(!valid.contains_key(property), "{kind}");
            let checked = registry[kind].check(&CTX, None, &valid).unwrap();
            let Some(PropertyValue::String(name)) = checked.get(property) else {
                panic!("{kind}: no {property} in {checked:?}");
            };
            let again = registry[kind].check(&CTX, Some(&checked), &valid).unwrap();
            assert_eq!(again.get(property), checked.get(property), "{kind}");
            assert!(!name.is_empty(), "{kind}");
        }
    }

    proptest! {
        #![proptest_config(fuzz_config())]

        /// Whatever the engine sends, check and diff answer without
        /// panicking, and every rejection names the property at fault.
        #[test]
        fn bad_inputs_are_rejected_by_name((kind, valid, news) in cases()) {
            let registry = registry();
            let handler = &registry[kind];
            let aws = event_rule::tests::aws();
            // Before Configure, and after it (which adds account checks).
            for aws in [None, Some(&aws)] {
                let ctx = CheckContext { name: "app", random_seed: b"seed", aws };
                for olds in [None, Some(&valid), Some(&news)] {
                    if let Err(failures) = handler.check(&ctx, olds, &news) {
                        prop_assert!(!failures.is_empty());
                        for failure in failures {
                            prop_assert!(!failure.property.is_empty(), "{kind}: {failure:?}");
                        }
                    }
                }
            }
            handler.diff(&valid, &news);
            handler.diff(&news, &valid);
        }
    }
}
