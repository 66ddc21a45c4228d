//! What must never be written in plaintext into a build: credentials in
//! known token formats, and environment variables that would replace the
//! credentials of the build's own role. Shared by the component's checks
//! and the CodeBuild project kind, so that a transform cannot bypass them.
//!
//! Findings name the kind of credential, never the value.

/// Variables that replace or redirect the credentials a build or deployment
/// runs with (AWS SDKs, Pulumi CLI). The role the provider built, and the
/// secrets it reads by reference, are the only credentials a build gets.
pub const RESERVED_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    // Makes Go SDKs read the shared config the deployment's profile is in.
    "AWS_SDK_LOAD_CONFIG",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "PULUMI_BACKEND_URL",
    // Where the deployment's Pulumi CLI and its checksums come from.
    "SECUREPIPELINE_PULUMI_RELEASES_URL",
    "SECUREPIPELINE_PULUMI_CHECKSUMS_URL",
];

pub fn is_reserved_variable(name: &str) -> bool {
    RESERVED_VARIABLES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
}

/// Variable names that say their value is a credential.
pub fn is_credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

/// A token format recognised by its prefix.
struct TokenFormat {
    prefix: &'static str,
    /// The characters the token's body is made of.
    body: fn(char) -> bool,
    /// The fewest body characters a real token has.
    min_len: usize,
    what: &'static str,
}

const fn format(
    prefix: &'static str,
    body: fn(char) -> bool,
    min_len: usize,
    what: &'static str,
) -> TokenFormat {
    TokenFormat {
        prefix,
        body,
        min_len,
        what,
    }
}

const PREFIXED: &[TokenFormat] = &[
    format("github_pat_", word, 22, "a GitHub fine-grained token"),
    format("ghp_", alnum, 20, "a GitHub token"),
    format("gho_", alnum, 20, "a GitHub OAuth token"),
    format("ghu_", alnum, 20, "a GitHub app user token"),
    format("ghs_", alnum, 20, "a GitHub app installation token"),
    format("ghr_", alnum, 20, "a GitHub refresh token"),
    format("glpat-", dashed_word, 20, "a GitLab access token"),
    format("npm_", alnum, 30, "an npm token"),
    format("xoxb-", dashed, 10, "a Slack token"),
    format("xoxa-", dashed, 10, "a Slack token"),
    format("xoxp-", dashed, 10, "a Slack token"),
    format("xoxr-", dashed, 10, "a Slack token"),
    format("xoxs-", dashed, 10, "a Slack token"),
    format("sk_live_", alnum, 16, "a Stripe secret key"),
    format("rk_live_", alnum, 16, "a Stripe restricted key"),
    format("pul-", hex, 32, "a Pulumi access token"),
];

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn dashed_word(c: char) -> bool {
    word(c) || c == '-'
}

fn dashed(c: char) -> bool {
    alnum(c) || c == '-'
}

fn hex(c: char) -> bool {
    c.is_ascii_hexdigit()
}

/// True when `text[at..]` starts a token: nothing that could belong to a
/// longer word precedes it.
fn starts_token(text: &str, at: usize) -> bool {
    !text[..at].chars().next_back().is_some_and(word)
}

fn prefixed_token(text: &str) -> Option<&'static str> {
    for token in PREFIXED {
        for (at, _) in text.match_indices(token.prefix) {
            let rest = &text[at + token.prefix.len()..];
            let body = rest.chars().take_while(|c| (token.body)(*c)).count();
            if starts_token(text, at) && body >= token.min_len {
                return Some(token.what);
            }
        }
    }
    None
}

/// `AKIA`/`ASIA` and 16 upper-case letters or digits, as a whole word.
fn aws_access_key(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    for prefix in ["AKIA", "ASIA"] {
        for (at, _) in text.match_indices(prefix) {
            let end = at + 20;
            let body_ok = bytes.len() >= end
                && bytes[at + 4..end]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            let bounded = bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
            if body_ok && bounded && starts_token(text, at) {
                return Some("an AWS access key id");
            }
        }
    }
    None
}

fn private_key(text: &str) -> Option<&'static str> {
    let begin = text.find("-----BEGIN ")?;
    text[begin..]
        .contains("PRIVATE KEY-----")
        .then_some("a private key")
}

/// A value, not a reference the shell expands at build time (`$TOKEN`,
/// `${TOKEN}`, `$(cat file)`).
fn is_literal(value: &str) -> bool {
    !value.is_empty() && !value.starts_with('$')
}

/// `Authorization: Bearer <token>` or `Basic <token>`, with a literal token.
fn authorization_header(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    for (at, _) in lower.match_indices("authorization:") {
        let rest = lower[at + "authorization:".len()..].trim_start();
        let Some(scheme_rest) = rest
            .strip_prefix("bearer")
            .or_else(|| rest.strip_prefix("basic"))
        else {
            continue;
        };
        if !scheme_rest.starts_with([' ', '\t']) {
            continue;
        }
        let offset = text.len() - scheme_rest.len();
        let token: String = text[offset..]
            .trim_start()
            .chars()
            .take_while(|c| !c.is_whitespace() && !"\"'".contains(*c))
            .collect();
        if is_literal(&token) && token.len() >= 8 {
            return Some("an Authorization header with a literal token");
        }
    }
    None
}

/// `scheme://user:password@host` with a literal password.
fn url_password(text: &str) -> Option<&'static str> {
    for (at, _) in text.match_indices("://") {
        let authority: &str = text[at + 3..]
            .split(|c: char| c == '/' || c.is_whitespace() || "\"'".contains(c))
            .next()
            .unwrap_or_default();
        let Some((userinfo, _host)) = authority.rsplit_once('@') else {
            continue;
        };
        if let Some((_, password)) = userinfo.split_once(':') {
            if is_literal(password) {
                return Some("a URL with a password");
            }
        }
    }
    None
}

/// What credential `text` holds, if any, as a phrase such as
/// "a GitHub token".
pub fn find(text: &str) -> Option<&'static str> {
    prefixed_token(text)
        .or_else(|| aws_access_key(text))
        .or_else(|| private_key(text))
        .or_else(|| authorization_header(text))
        .or_else(|| url_password(text))
}

/// Why a plaintext environment variable must be a secret reference instead.
pub fn plaintext_variable_problem(name: &str, value: &str) -> Option<String> {
    if let Some(what) = find(value) {
        return Some(format!("holds {what}"));
    }
    (is_credential_name(name) && !value.is_empty()).then(|| format!("`{name}` names a credential"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_token_format() {
        for (text, what) in [
            ("ghp_0123456789abcdefABCDEF0123456789abcd", "a GitHub token"),
            ("gho_0123456789abcdefABCDEF01", "a GitHub OAuth token"),
            ("ghu_0123456789abcdefABCDEF01", "a GitHub app user token"),
            (
                "ghs_0123456789abcdefABCDEF01",
                "a GitHub app installation token",
            ),
            ("ghr_0123456789abcdefABCDEF01", "a GitHub refresh token"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijkl",
                "a GitHub fine-grained token",
            ),
            ("glpat-xxxxXXXX1234-abcdEFGH", "a GitLab access token"),
            ("npm_0123456789abcdefghijABCDEFGHIJ0123", "an npm token"),
            ("xoxb-123456789012-abcdefABCDEF", "a Slack token"),
            ("xoxp-123456789012-abcdefABCDEF", "a Slack token"),
            ("xoxa-123456789012-abcdefABCDEF", "a Slack token"),
            ("xoxr-123456789012-abcdefABCDEF", "a Slack token"),
            ("xoxs-123456789012-abcdefABCDEF", "a Slack token"),
            ("sk_live_0123456789abcdefABCD", "a Stripe secret key"),
            ("rk_live_0123456789abcdefABCD", "a Stripe restricted key"),
            (
                "pul-0123456789abcdef0123456789abcdef01234567",
                "a Pulumi access token",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
            ("ASIAIOSFODNN7EXAMPLE", "an AWS access key id"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                "a private key",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "a private key"),
            (
                "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30' https://api",
                "an Authorization header with a literal token",
            ),
            (
                "curl -H \"authorization: basic dXNlcjpwYXNzd29yZA==\" https://api",
                "an Authorization header with a literal token",
            ),
            (
                "git clone https://deploy:hunter2@github.com/org/app.git",
                "a URL with a password",
            ),
            ("postgres://app:s3cret@db:5432/app", "a URL with a password"),
        ] {
            assert_eq!(find(text), Some(what), "{text}");
            // Embedded in a command, too.
            assert_eq!(
                find(&format!("export X={text} && make")),
                Some(what),
                "{text}"
            );
        }
    }

    #[test]
    fn leaves_ordinary_commands_alone() {
        for text in [
            "npm ci && npm test",
            "export NPM_TOKEN=$NPM_TOKEN",
            "npm_config_cache=/tmp npm ci",
            "echo ghp_ is the GitHub token prefix",
            "ghp_short",
            "myghp_0123456789abcdefABCDEF0123456789",
            "AKIA_NOT_A_KEY",
            "AKIAIOSFODNN7EXAMPLEX",
            "xAKIAIOSFODNN7EXAMPLE",
            "curl -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.com",
            "curl -H \"Authorization: Bearer ${TOKEN}\" https://api",
            "curl -H 'Authorization: Basic $(cat /tmp/auth)' https://api",
            "git clone https://x-access-token:$GITHUB_TOKEN@github.com/org/app.git",
            "git clone https://github.com/org/app.git",
            "git clone git@github.com:org/app.git",
            "ssh://git@example.com:2222/app.git",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN PUBLIC KEY-----",
            "sk_test_0123456789abcdefABCD",
        ] {
            assert_eq!(find(text), None, "{text}");
        }
    }

    #[test]
    fn credential_names_need_a_reference() {
        assert_eq!(
            plaintext_variable_problem("DB_PASSWORD", "x").as_deref(),
            Some("`DB_PASSWORD` names a credential")
        );
        assert_eq!(plaintext_variable_problem("DB_PASSWORD", ""), None);
        assert_eq!(
            plaintext_variable_problem("CONFIG", "AKIAIOSFODNN7EXAMPLE").as_deref(),
            Some("holds an AWS access key id")
        );
        assert_eq!(plaintext_variable_problem("NODE_ENV", "production"), None);
    }

    #[test]
    fn variables_that_replace_the_role_are_reserved_in_any_case() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key",
            "AWS_SESSION_TOKEN",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONFIG_FILE",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "PULUMI_ACCESS_TOKEN",
            "PULUMI_CONFIG_PASSPHRASE",
            "PULUMI_CONFIG_PASSPHRASE_FILE",
            "PULUMI_BACKEND_URL",
        ] {
            assert!(is_reserved_variable(name), "{name}");
        }
        assert!(!is_reserved_variable("AWS_REGION"));
        assert!(!is_reserved_variable("NODE_ENV"));
    }
}
