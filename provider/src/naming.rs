//! One naming scheme for every child: `<prefix>-<suffix>`, where the prefix
//! comes from the component and its purpose, and the 8-character suffix is
//! derived from the engine's per-resource random seed, so two stacks never
//! collide and a name, once chosen, is kept.

use rand::Rng;

use crate::resource::{is_unknown, CheckFailure};

/// A service's limits on names.
pub struct NameRule {
    pub what: &'static str,
    pub max_len: usize,
    pub lowercase_only: bool,
    pub allowed: fn(char) -> bool,
}

const SUFFIX_LEN: usize = 8;

fn alnum_dash(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

fn alnum_dash_underscore(c: char) -> bool {
    alnum_dash(c) || c == '_'
}

pub const S3_BUCKET: NameRule = NameRule {
    what: "S3 bucket names",
    max_len: 63,
    lowercase_only: true,
    allowed: alnum_dash,
};
pub const IAM_ROLE: NameRule = NameRule {
    what: "IAM role names",
    max_len: 64,
    lowercase_only: false,
    allowed: |c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c),
};
pub const LOG_GROUP: NameRule = NameRule {
    what: "log group names",
    max_len: 512,
    lowercase_only: false,
    allowed: |c| c.is_ascii_alphanumeric() || "._-/#".contains(c),
};
pub const CODEBUILD_PROJECT: NameRule = NameRule {
    what: "CodeBuild project names",
    max_len: 150,
    lowercase_only: false,
    allowed: alnum_dash_underscore,
};
pub const PIPELINE: NameRule = NameRule {
    what: "pipeline names",
    max_len: 100,
    lowercase_only: false,
    allowed: |c| c.is_ascii_alphanumeric() || ".@_-".contains(c),
};
pub const EVENT_RULE: NameRule = NameRule {
    what: "EventBridge rule names",
    max_len: 64,
    lowercase_only: false,
    allowed: |c| c.is_ascii_alphanumeric() || "._-".contains(c),
};
pub const SNS_TOPIC: NameRule = NameRule {
    what: "SNS topic names",
    max_len: 256,
    lowercase_only: false,
    allowed: alnum_dash_underscore,
};
pub const CONNECTION: NameRule = NameRule {
    what: "connection names",
    max_len: 32,
    lowercase_only: false,
    allowed: alnum_dash_underscore,
};
pub const KMS_ALIAS: NameRule = NameRule {
    what: "KMS alias names",
    max_len: 250,
    lowercase_only: false,
    allowed: |c| c.is_ascii_alphanumeric() || "/_-".contains(c),
};

/// Makes `prefix` fit the rule, leaving room for the suffix.
pub fn sanitize_prefix(prefix: &str, rule: &NameRule) -> String {
    let mut out = String::new();
    for c in prefix.chars() {
        let c = if rule.lowercase_only {
            c.to_ascii_lowercase()
        } else {
            c
        };
        let c = if (rule.allowed)(c) { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '/');
    let budget = rule.max_len - SUFFIX_LEN - 1;
    let mut truncated: String = trimmed.chars().take(budget).collect();
    while truncated.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        truncated.pop();
    }
    if truncated.is_empty() {
        "sp".into()
    } else {
        truncated
    }
}

/// Eight lowercase base-36 characters derived from the seed (or random when
/// the engine sent none).
pub fn suffix(seed: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    if seed.is_empty() {
        state ^= rand::rng().random::<u64>();
    }
    for byte in seed {
        state ^= u64::from(*byte);
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    (0..SUFFIX_LEN)
        .map(|_| {
            state ^= state >> 29;
            state = state.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// The name to use: the old one while the prefix is unchanged, else a new
/// auto-name.
pub fn choose(
    old_name: Option<&str>,
    old_prefix: Option<&str>,
    prefix: &str,
    rule: &NameRule,
    seed: &[u8],
) -> String {
    match (old_name, old_prefix) {
        (Some(name), Some(old)) if old == prefix && !is_unknown(name) => name.to_string(),
        _ => format!("{}-{}", sanitize_prefix(prefix, rule), suffix(seed)),
    }
}

/// Checks a name against a service's rule.
pub fn check(property: &str, name: &str, rule: &NameRule) -> Option<CheckFailure> {
    if is_unknown(name) {
        return None;
    }
    let len = name.chars().count();
    if len == 0 || len > rule.max_len {
        return Some(CheckFailure::new(
            property,
            format!(
                "must be 1 to {} characters; `{name}` has {len}",
                rule.max_len
            ),
        ));
    }
    name.chars()
        .find(|c| !(rule.allowed)(*c) || (rule.lowercase_only && c.is_ascii_uppercase()))
        .map(|bad| {
            CheckFailure::new(
                property,
                format!(
                    "`{name}` contains `{bad}`, which {} do not allow",
                    rule.what
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_every_rule() {
        let long = "My Pipeline_for the #1 team ".repeat(10);
        for rule in [
            &S3_BUCKET,
            &IAM_ROLE,
            &LOG_GROUP,
            &CODEBUILD_PROJECT,
            &PIPELINE,
            &EVENT_RULE,
            &SNS_TOPIC,
            &CONNECTION,
            &KMS_ALIAS,
        ] {
            let name = choose(None, None, &long, rule, b"seed");
            assert_eq!(
                check("name", &name, rule),
                None,
                "{} produced {name}",
                rule.what
            );
        }
    }

    #[test]
    fn suffix_is_stable_for_a_seed_and_differs_between_seeds() {
        assert_eq!(suffix(b"one"), suffix(b"one"));
        assert_ne!(suffix(b"one"), suffix(b"two"));
        assert_eq!(suffix(b"one").len(), 8);
    }

    #[test]
    fn keeps_the_old_name_while_the_prefix_is_unchanged() {
        assert_eq!(
            choose(
                Some("app-build-abcdefgh"),
                Some("app-build"),
                "app-build",
                &CODEBUILD_PROJECT,
                b"x"
            ),
            "app-build-abcdefgh"
        );
        assert!(choose(
            Some("app-build-abcdefgh"),
            Some("app-build"),
            "app-test",
            &CODEBUILD_PROJECT,
            b"x"
        )
        .starts_with("app-test-"));
    }

    #[test]
    fn bucket_names_are_lowercase() {
        let name = choose(None, None, "MyApp_Artifacts", &S3_BUCKET, b"s");
        assert!(name.starts_with("myapp-artifacts-"), "{name}");
        assert!(check("name", "Upper", &S3_BUCKET).is_some());
    }
}
