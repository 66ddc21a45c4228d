//! Tags every taggable child carries: the user's, the provider's
//! `defaultTags`, and the ones that say who manages it.

use std::collections::BTreeMap;

use crate::resource::CheckFailure;

pub const MANAGED_BY_KEY: &str = "ManagedBy";
pub const MANAGED_BY_VALUE: &str = "pulumi-securepipeline";
pub const PIPELINE_KEY: &str = "securepipeline:pipeline";

pub type Tags = BTreeMap<String, String>;

/// The tag a create puts on what it makes, holding a token only that create
/// knows: after an answer that was lost it recognises its own resource by
/// it, and never takes another's for its own. Not part of the program's
/// tags: reads leave it out.
pub const CREATE_TOKEN_KEY: &str = "securepipeline:create-token";

/// A fresh token for one create.
pub fn new_create_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `tags` with this create's token added.
pub fn with_create_token(tags: &Tags, token: &str) -> Tags {
    let mut tags = tags.clone();
    tags.insert(CREATE_TOKEN_KEY.into(), token.into());
    tags
}

/// Live tags as the program states them: without a create token.
pub fn without_create_token(tags: impl IntoIterator<Item = (String, String)>) -> Tags {
    tags.into_iter()
        .filter(|(key, _)| key != CREATE_TOKEN_KEY)
        .collect()
}

/// The provider's defaults, overridden by the resource's own tags, plus
/// `ManagedBy`, which nothing overrides.
pub fn effective(defaults: &Tags, own: &Tags) -> Tags {
    let mut tags = defaults.clone();
    tags.extend(own.clone());
    tags.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    tags
}

/// Checks AWS's common tag limits.
pub fn validate(property: &str, tags: &Tags) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    if tags.len() > 45 {
        failures.push(CheckFailure::new(
            property,
            format!(
                "{} tags given; at most 45 fit once the provider adds its own",
                tags.len()
            ),
        ));
    }
    for (key, value) in tags {
        let path = format!("{property}.{key}");
        if key.is_empty() || key.chars().count() > 128 {
            failures.push(CheckFailure::new(
                &path,
                "tag keys must be 1 to 128 characters",
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            failures.push(CheckFailure::new(
                &path,
                "tag keys starting with `aws:` are reserved by AWS",
            ));
        }
        if key == CREATE_TOKEN_KEY {
            failures.push(CheckFailure::new(
                &path,
                "this key is the provider's own: it marks what a create makes, so that the create knows it again after a lost answer; choose another key",
            ));
        }
        if value.chars().count() > 256 {
            failures.push(CheckFailure::new(
                &path,
                "tag values must be at most 256 characters",
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
        if !key.chars().all(allowed) || !value.chars().all(allowed) {
            failures.push(CheckFailure::new(
                &path,
                "tags may contain letters, digits, spaces and _ . : / = + - @ only",
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn own_tags_override_defaults_but_not_managed_by() {
        let result = effective(
            &tags(&[("team", "a"), ("env", "dev")]),
            &tags(&[("team", "b"), (MANAGED_BY_KEY, "me")]),
        );
        assert_eq!(result["team"], "b");
        assert_eq!(result["env"], "dev");
        assert_eq!(result[MANAGED_BY_KEY], MANAGED_BY_VALUE);
    }

    #[test]
    fn rejects_reserved_and_oversized_tags() {
        let long = "x".repeat(300);
        let failures = validate(
            "tags",
            &tags(&[("aws:owner", "a"), ("k", &long), ("bad#", "v")]),
        );
        let properties: Vec<_> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(properties, vec!["tags.aws:owner", "tags.bad#", "tags.k"]);
    }

    #[test]
    fn the_ownership_marker_is_not_a_tag_programs_set() {
        let failures = validate("tags", &tags(&[(CREATE_TOKEN_KEY, "mine")]));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].property, format!("tags.{CREATE_TOKEN_KEY}"));
    }
}

/// Tags to set and tag keys to remove to go from `old` to `new`.
pub fn changes(old: &Tags, new: &Tags) -> (Tags, Vec<String>) {
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

#[cfg(test)]
mod change_tests {
    use super::*;

    #[test]
    fn computes_tags_to_set_and_remove() {
        let old: Tags = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let new: Tags = [("a", "1"), ("b", "3"), ("c", "4")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (set, remove) = changes(&old, &new);
        assert_eq!(set.keys().collect::<Vec<_>>(), vec!["b", "c"]);
        assert!(remove.is_empty());
        let (set, remove) = changes(&new, &old);
        assert_eq!(set.keys().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(remove, vec!["c"]);
    }
}
