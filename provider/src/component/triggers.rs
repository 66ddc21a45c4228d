//! What starts the pipeline: the branch, more branches and release tags as
//! glob patterns, checked at preview so that the derived V2 push trigger
//! can start the pipeline and says one thing only.
//!
//! CodePipeline reads trigger patterns as Java NIO globs: `*` within one
//! path component, `**` across components, `?` one character, `[...]` one
//! of a set (`!` negates), `{a,b}` alternatives (not nested), `\` escapes.

use super::args::Source;
use crate::resource::{is_unknown, Failures};

/// CodePipeline's limit on the patterns of one filter criterion.
pub const MAX_PATTERNS: usize = 8;
const MAX_PATTERN_LENGTH: usize = 255;

/// One element of a parsed glob.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**`: any run of characters.
    Stars,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character (never `/`) in or, negated, not in the set.
    Set {
        negated: bool,
        items: Vec<SetItem>,
    },
    /// `{a,b}`: any one of the alternatives.
    Group(Vec<Vec<Token>>),
}

#[derive(Debug, Clone, PartialEq)]
enum SetItem {
    One(char),
    Range(char, char),
}

/// Parses a glob; the reason when the syntax does not allow it.
fn parse(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut alternatives: Vec<Vec<Token>> = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut in_group = false;
    let mut outside: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let escaped = chars
                    .get(i + 1)
                    .ok_or_else(|| format!("`{pattern}` ends with the escape character `\\`"))?;
                current.push(Token::Literal(*escaped));
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                current.push(Token::Stars);
                i += 1;
            }
            '*' => current.push(Token::Star),
            '?' => current.push(Token::One),
            '[' => {
                let (token, end) = parse_set(pattern, &chars, i)?;
                current.push(token);
                i = end;
            }
            '{' if in_group => {
                return Err(format!("`{pattern}`: `{{...}}` groups cannot be nested"))
            }
            '{' => {
                in_group = true;
                outside = std::mem::take(&mut current);
            }
            ',' if in_group => alternatives.push(std::mem::take(&mut current)),
            '}' if in_group => {
                in_group = false;
                alternatives.push(std::mem::take(&mut current));
                current = std::mem::take(&mut outside);
                current.push(Token::Group(std::mem::take(&mut alternatives)));
            }
            _ => current.push(Token::Literal(c)),
        }
        i += 1;
    }
    if in_group {
        return Err(format!("`{pattern}` has an unclosed `{{`"));
    }
    Ok(current)
}

/// The set starting at `start` (`[`), and the index of its `]`.
fn parse_set(pattern: &str, chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let mut i = start + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    while let Some(&c) = chars.get(i) {
        if c == ']' {
            return Ok((Token::Set { negated, items }, i));
        }
        // `-` between two members makes a range; first or last, itself.
        match (chars.get(i + 1), chars.get(i + 2)) {
            (Some('-'), Some(&end)) if end != ']' => {
                items.push(SetItem::Range(c, end));
                i += 3;
            }
            _ => {
                items.push(SetItem::One(c));
                i += 1;
            }
        }
    }
    Err(format!("`{pattern}` has an unclosed `[`"))
}

fn set_contains(items: &[SetItem], c: char) -> bool {
    items.iter().any(|item| match item {
        SetItem::One(one) => *one == c,
        SetItem::Range(low, high) => (*low..=*high).contains(&c),
    })
}

/// Whether `tokens` match all of `value`.
fn match_tokens(tokens: &[Token], value: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return value.is_empty();
    };
    match first {
        Token::Literal(c) => value.first() == Some(c) && match_tokens(rest, &value[1..]),
        Token::One => value.first().is_some_and(|c| *c != '/') && match_tokens(rest, &value[1..]),
        Token::Set { negated, items } => value.first().is_some_and(|c| {
            *c != '/' && set_contains(items, *c) != *negated && match_tokens(rest, &value[1..])
        }),
        Token::Star => (0..=value.len())
            .take_while(|n| *n == 0 || value[n - 1] != '/')
            .any(|n| match_tokens(rest, &value[n..])),
        Token::Stars => (0..=value.len()).any(|n| match_tokens(rest, &value[n..])),
        Token::Group(alternatives) => alternatives.iter().any(|alternative| {
            let mut joined = alternative.clone();
            joined.extend_from_slice(rest);
            match_tokens(&joined, value)
        }),
    }
}

/// Whether the glob matches the whole of `value`; the reason when the
/// pattern is malformed.
pub fn glob_matches(pattern: &str, value: &str) -> Result<bool, String> {
    let tokens = parse(pattern)?;
    let value: Vec<char> = value.chars().collect();
    Ok(match_tokens(&tokens, &value))
}

/// Whether a pattern names exactly one value (no glob character).
fn literal(pattern: &str) -> Option<String> {
    let tokens = parse(pattern).ok()?;
    tokens
        .iter()
        .map(|t| match t {
            Token::Literal(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// What kind of git name a list of patterns filters.
#[derive(Clone, Copy)]
enum Ref {
    Branch,
    Tag,
}

impl Ref {
    fn noun(self) -> &'static str {
        match self {
            Ref::Branch => "branch",
            Ref::Tag => "tag",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Ref::Branch => "refs/heads/",
            Ref::Tag => "refs/tags/",
        }
    }
}

/// One branch or tag pattern: a well-formed glob over names git allows.
fn check_ref_pattern(kind: Ref, pattern: &str) -> Result<(), String> {
    if is_unknown(pattern) {
        return Ok(());
    }
    if pattern.trim().is_empty() || pattern.len() > MAX_PATTERN_LENGTH {
        return Err(format!(
            "use a glob of 1 to {MAX_PATTERN_LENGTH} characters, e.g. `{}`",
            match kind {
                Ref::Branch => "release/*",
                Ref::Tag => "v*",
            }
        ));
    }
    if let Some(name) = pattern.strip_prefix(kind.prefix()) {
        return Err(format!(
            "`{pattern}` is a ref, and triggers match {} names only, so it would never start; use `{name}`",
            kind.noun()
        ));
    }
    if pattern.starts_with("refs/") {
        return Err(format!(
            "`{pattern}` is a ref; triggers match {} names such as `{}`",
            kind.noun(),
            match kind {
                Ref::Branch => "main",
                Ref::Tag => "v1.2.0",
            }
        ));
    }
    if pattern
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "~^:".contains(c))
        || pattern.contains("..")
        || pattern.starts_with('/')
        || pattern.ends_with('/')
    {
        return Err(format!(
            "`{pattern}` can match no git {} name (no spaces, `~`, `^`, `:`, `..` or leading or trailing `/`)",
            kind.noun()
        ));
    }
    parse(pattern).map(|_| ())
}

/// The patterns given for one property, each checked, with duplicates
/// (also of `already`, the names listed elsewhere) rejected.
fn check_list(
    property: &str,
    kind: Ref,
    patterns: &[String],
    already: &[(String, String)],
    failures: &mut Failures,
) {
    for (index, pattern) in patterns.iter().enumerate() {
        let path = format!("{property}[{index}]");
        if let Err(reason) = check_ref_pattern(kind, pattern) {
            failures.push(&path, reason);
            continue;
        }
        let earlier = patterns[..index]
            .iter()
            .position(|p| p == pattern)
            .map(|at| format!("{property}[{at}]"))
            .or_else(|| {
                already
                    .iter()
                    .find(|(_, p)| p == pattern)
                    .map(|(where_, _)| where_.clone())
            });
        if let Some(earlier) = earlier {
            failures.push(
                path,
                format!("`{pattern}` is already given in {earlier}; list each pattern once"),
            );
        }
    }
}

/// Excludes that contradict the includes: the same pattern on both sides,
/// or an exclude matching an included name exactly, so it would never
/// start.
fn check_contradictions(
    property: &str,
    excludes: &[String],
    includes: &[(String, String)],
    failures: &mut Failures,
) {
    for (index, exclude) in excludes.iter().enumerate() {
        for (where_, include) in includes {
            let excluded = exclude == include
                || literal(include)
                    .is_some_and(|name| glob_matches(exclude, &name).unwrap_or(false));
            if excluded {
                failures.push(
                    format!("{property}[{index}]"),
                    format!(
                        "`{exclude}` excludes `{include}` ({where_}), which could then never start the pipeline; remove one of them or narrow the exclusion"
                    ),
                );
            }
        }
    }
}

fn count(property: &str, given: usize, failures: &mut Failures, what: &str) {
    if given > MAX_PATTERNS {
        failures.push(
            property,
            format!("{given} {what}; CodePipeline accepts at most {MAX_PATTERNS} in one filter"),
        );
    }
}

/// Checks `source.branches`, `excludeBranches`, `tags`, `excludeTags` and
/// the path filters against each other.
pub fn check(source: &Source, default_branch: &str, failures: &mut Failures) {
    let branch = source.branch.as_deref().unwrap_or(default_branch);
    let branches = source.branches.as_deref().unwrap_or_default();
    let exclude_branches = source.exclude_branches.as_deref().unwrap_or_default();
    let tags = source.tags.as_deref().unwrap_or_default();
    let exclude_tags = source.exclude_tags.as_deref().unwrap_or_default();

    let the_branch = vec![("source.branch".to_string(), branch.to_string())];
    check_list(
        "source.branches",
        Ref::Branch,
        branches,
        &the_branch,
        failures,
    );
    count(
        "source.branches",
        branches.len() + 1,
        failures,
        "branch patterns with `branch`",
    );
    check_list(
        "source.excludeBranches",
        Ref::Branch,
        exclude_branches,
        &[],
        failures,
    );
    count(
        "source.excludeBranches",
        exclude_branches.len(),
        failures,
        "excluded branch patterns",
    );
    let mut included: Vec<(String, String)> = the_branch;
    included.extend(
        branches
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("source.branches[{i}]"), p.clone())),
    );
    check_contradictions(
        "source.excludeBranches",
        exclude_branches,
        &included,
        failures,
    );

    check_list("source.tags", Ref::Tag, tags, &[], failures);
    count("source.tags", tags.len(), failures, "tag patterns");
    check_list("source.excludeTags", Ref::Tag, exclude_tags, &[], failures);
    count(
        "source.excludeTags",
        exclude_tags.len(),
        failures,
        "excluded tag patterns",
    );
    if !exclude_tags.is_empty() && tags.is_empty() {
        failures.push(
            "source.excludeTags",
            "excluding tags starts nothing by itself; add the tags that start releases to `tags` (e.g. `v*`)",
        );
    }
    let tag_includes: Vec<(String, String)> = tags
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("source.tags[{i}]"), p.clone()))
        .collect();
    check_contradictions("source.excludeTags", exclude_tags, &tag_includes, failures);

    let path_includes: Vec<(String, String)> = source
        .include_paths
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| (format!("source.includePaths[{i}]"), p.clone()))
        .collect();
    let path_excludes = source.exclude_paths.as_deref().unwrap_or_default();
    check_contradictions(
        "source.excludePaths",
        path_excludes,
        &path_includes,
        failures,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_read_as_codepipeline_reads_them() {
        for (pattern, value, expected) in [
            ("main", "main", true),
            ("release/*", "release/1.2", true),
            ("release/*", "release/1/hotfix", false),
            ("release/**", "release/1/hotfix", true),
            ("v?", "v1", true),
            ("v?", "v10", false),
            ("v[0-9]*", "v1.2.0", true),
            ("v[!0-9]*", "v1.2.0", false),
            ("{main,develop}", "develop", true),
            ("v*-{rc,beta}*", "v1.0-rc1", true),
            ("v*-{rc,beta}*", "v1.0", false),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("feature/[a-c]", "feature/b", true),
        ] {
            assert_eq!(
                glob_matches(pattern, value),
                Ok(expected),
                "{pattern} against {value}"
            );
        }
        for malformed in ["v[0-9", "{a,b", "{a,{b}}", "x\\"] {
            assert!(glob_matches(malformed, "x").is_err(), "{malformed}");
        }
    }

    fn source(value: serde_json::Value) -> Source {
        let mut base = json!({"repository": "org/app"});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    fn failures(value: serde_json::Value) -> Vec<(String, String)> {
        let mut failures = Failures::default();
        check(&source(value), "main", &mut failures);
        failures
            .into_result(())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.property, f.reason))
            .collect()
    }

    #[test]
    fn releases_and_branch_globs_are_accepted() {
        assert_eq!(
            failures(json!({"branches": ["release/*", "hotfix/**"],
                             "excludeBranches": ["release/old-*"],
                             "tags": ["v[0-9]*"], "excludeTags": ["*-rc*"],
                             "includePaths": ["src/**"], "excludePaths": ["docs/**"]})),
            vec![]
        );
    }

    #[test]
    fn an_exclusion_that_contradicts_an_inclusion_is_rejected_with_the_reason() {
        let found = failures(json!({"branch": "release/1",
                                     "branches": ["hotfix/*"],
                                     "excludeBranches": ["release/*", "hotfix/*"],
                                     "tags": ["v*"], "excludeTags": ["v*"],
                                     "includePaths": ["src/**"], "excludePaths": ["src/**"]}));
        let properties: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            properties,
            vec![
                "source.excludeBranches[0]",
                "source.excludeBranches[1]",
                "source.excludeTags[0]",
                "source.excludePaths[0]"
            ]
        );
        assert!(
            found[0].1.contains("`release/1` (source.branch)"),
            "{}",
            found[0].1
        );
        assert!(found[0].1.contains("never start"), "{}", found[0].1);
    }

    #[test]
    fn overlapping_patterns_are_listed_once() {
        let found = failures(json!({"branch": "main",
                                     "branches": ["main", "release/*", "release/*"],
                                     "tags": ["v*", "v*"]}));
        assert_eq!(
            found,
            vec![
                (
                    "source.branches[0]".to_string(),
                    "`main` is already given in source.branch; list each pattern once".to_string()
                ),
                (
                    "source.branches[2]".to_string(),
                    "`release/*` is already given in source.branches[1]; list each pattern once"
                        .to_string()
                ),
                (
                    "source.tags[1]".to_string(),
                    "`v*` is already given in source.tags[0]; list each pattern once".to_string()
                ),
            ]
        );
    }

    #[test]
    fn refs_malformed_globs_and_too_many_patterns_are_rejected() {
        let found = failures(
            json!({"branches": ["refs/heads/release/*", "rel{a,b", "a b"],
                                     "tags": ["refs/tags/v*", ""],
                                     "excludeTags": ["x"]}),
        );
        let properties: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            properties,
            vec![
                "source.branches[0]",
                "source.branches[1]",
                "source.branches[2]",
                "source.tags[0]",
                "source.tags[1]",
            ]
        );
        assert!(found[0].1.ends_with("use `release/*`"), "{}", found[0].1);
        assert!(found[3].1.ends_with("use `v*`"), "{}", found[3].1);
        let found = failures(json!({"excludeTags": ["v0*"]}));
        assert_eq!(found[0].0, "source.excludeTags");
        let eight: Vec<String> = (0..8).map(|i| format!("b{i}/*")).collect();
        let found = failures(json!({ "branches": eight }));
        assert_eq!(found[0].0, "source.branches");
        assert!(found[0].1.contains("9 branch patterns"), "{}", found[0].1);
    }
}
