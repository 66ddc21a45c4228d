//! The Pulumi CLI in the buildspecs the provider writes: installed only
//! after its release tarball matches a checksum, logged in to Pulumi Cloud
//! with an AWS identity token instead of a stored one, and given a KMS key
//! as a stack's secrets provider.

use crate::buildspec::shell_quote;

/// The first Pulumi CLI release whose `pulumi login` exchanges OIDC tokens
/// (`--oidc-token`, `--oidc-org`, `--oidc-team`, `--oidc-user`,
/// `--oidc-expiration`).
pub const OIDC_MIN_PULUMI_VERSION: (u32, u32, u32) = (3, 209, 0);
/// How long the AWS identity token lives: it is exchanged at once.
pub const IDENTITY_TOKEN_SECONDS: u32 = 300;
/// Where the buildspec downloads Pulumi CLI releases and, from a separate
/// origin, their checksums, unless the build's environment names others in
/// [`RELEASES_URL_VARIABLE`] and [`CHECKSUMS_URL_VARIABLE`].
pub const PULUMI_RELEASES_URL: &str = "https://get.pulumi.com/releases/sdk";
pub const PULUMI_CHECKSUMS_URL: &str = "https://github.com/pulumi/pulumi/releases/download";
/// Build environment variables that move the download origins (for a
/// pipeline run without internet access). No input sets them: users'
/// environments may not name them (see `credentials::RESERVED_VARIABLES`).
pub const RELEASES_URL_VARIABLE: &str = "SECUREPIPELINE_PULUMI_RELEASES_URL";
pub const CHECKSUMS_URL_VARIABLE: &str = "SECUREPIPELINE_PULUMI_CHECKSUMS_URL";

/// `3.x.y` as numbers.
pub fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.split('.').map(|p| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    });
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(parsed)
}

/// The audience of the identity token a stage exchanges with Pulumi Cloud.
pub fn oidc_audience(organization: &str) -> String {
    format!("urn:pulumi:org:{organization}")
}

/// The region of a key ARN (`arn:P:kms:<region>:A:key/<id>`).
fn key_region(key_arn: &str) -> &str {
    key_arn.split(':').nth(3).unwrap_or_default()
}

/// The stack's secrets provider: the key by its ARN, so that it resolves in
/// the key's account whatever credentials call it; with `profile`, the
/// stage's own role uses it even while the deployment runs under another.
pub fn secrets_provider_url(key_arn: &str, profile: Option<&str>) -> String {
    let mut url = format!("awskms:///{key_arn}?region={}", key_region(key_arn));
    if let Some(profile) = profile {
        url.push_str(&format!("&profile={profile}"));
    }
    url
}

/// Logs in with an identity token STS issues to the run's own role (run
/// these before `AWS_PROFILE` points at another role). The token goes
/// through a private file, never the command line or the log, and lives
/// [`IDENTITY_TOKEN_SECONDS`]; the Pulumi token lives as long as the build
/// may run.
pub fn oidc_login_commands(
    backend_url: Option<&str>,
    (organization, team, user): (&str, Option<&str>, Option<&str>),
    expiration_minutes: u32,
) -> Vec<String> {
    let mut login = match backend_url {
        Some(url) => format!("pulumi login {}", shell_quote(url)),
        None => "pulumi login".to_string(),
    };
    login.push_str(&format!(
        " --oidc-token \"file://$PULUMI_OIDC_TOKEN_FILE\" --oidc-org {}",
        shell_quote(organization)
    ));
    if let Some(team) = team {
        login.push_str(&format!(" --oidc-team {}", shell_quote(team)));
    }
    if let Some(user) = user {
        login.push_str(&format!(" --oidc-user {}", shell_quote(user)));
    }
    login.push_str(&format!(" --oidc-expiration {expiration_minutes}m"));
    vec![
        "PULUMI_OIDC_TOKEN_FILE=\"$(mktemp)\"".to_string(),
        // GetWebIdentityToken is served by regional STS endpoints only.
        format!(
            "AWS_STS_REGIONAL_ENDPOINTS=regional aws sts get-web-identity-token --audience {} --signing-algorithm RS256 --duration-seconds {IDENTITY_TOKEN_SECONDS} --query WebIdentityToken --output text > \"$PULUMI_OIDC_TOKEN_FILE\"",
            shell_quote(&oidc_audience(organization))
        ),
        login,
        "rm -f \"$PULUMI_OIDC_TOKEN_FILE\"".to_string(),
    ]
}

/// Installs exactly the pinned Pulumi CLI release for the build's
/// architecture, checked against `pulumiCliSha256` or the release's
/// checksums (fetched from a second origin), before anything runs it.
/// `version` is a validated `3.x.y`; `sha256` a validated hash.
pub fn install_commands(version: &str, sha256: Option<&str>) -> Vec<String> {
    let mut commands = vec![
        "case \"$(uname -m)\" in x86_64) PULUMI_ARCH=x64 ;; aarch64) PULUMI_ARCH=arm64 ;; *) echo \"no Pulumi CLI release for $(uname -m)\" >&2; exit 1 ;; esac".to_string(),
        "PULUMI_DOWNLOAD=\"$(mktemp -d)\"".to_string(),
        format!("PULUMI_TARBALL=\"pulumi-v{version}-linux-$PULUMI_ARCH.tar.gz\""),
        format!("curl -fsSL -o \"$PULUMI_DOWNLOAD/$PULUMI_TARBALL\" \"${{{RELEASES_URL_VARIABLE}:-{PULUMI_RELEASES_URL}}}/$PULUMI_TARBALL\""),
    ];
    match sha256 {
        Some(hash) => commands.push(format!(
            "echo \"{}  $PULUMI_TARBALL\" > \"$PULUMI_DOWNLOAD/pulumi.sha256\"",
            hash.to_ascii_lowercase()
        )),
        None => commands.extend([
            format!("curl -fsSL -o \"$PULUMI_DOWNLOAD/checksums.txt\" \"${{{CHECKSUMS_URL_VARIABLE}:-{PULUMI_CHECKSUMS_URL}}}/v{version}/pulumi-{version}-checksums.txt\""),
            // Exactly the tarball's line; none leaves the file empty, which
            // sha256sum rejects.
            "awk -v tarball=\"$PULUMI_TARBALL\" '$2 == tarball' \"$PULUMI_DOWNLOAD/checksums.txt\" > \"$PULUMI_DOWNLOAD/pulumi.sha256\"".to_string(),
        ]),
    }
    commands.extend([
        "(cd \"$PULUMI_DOWNLOAD\" && sha256sum --check --strict pulumi.sha256)".to_string(),
        "mkdir -p \"$HOME/.pulumi/bin\"".to_string(),
        "tar -xzf \"$PULUMI_DOWNLOAD/$PULUMI_TARBALL\" --strip-components=1 -C \"$HOME/.pulumi/bin\"".to_string(),
        "export PATH=\"$HOME/.pulumi/bin:$PATH\"".to_string(),
        format!("test \"$(pulumi version)\" = v{version}"),
    ]);
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("3.209.0"), Some((3, 209, 0)));
        assert!(parse_version("3.99.0").unwrap() < OIDC_MIN_PULUMI_VERSION);
        assert!(parse_version("3.210.1").unwrap() > OIDC_MIN_PULUMI_VERSION);
        for bad in ["3.209", "3.209.0.1", "3.x.0", "", "3..0"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_secrets_provider_names_the_key_by_its_arn_in_its_region() {
        let key = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            secrets_provider_url(key, None),
            format!("awskms:///{key}?region=eu-central-1")
        );
        assert_eq!(
            secrets_provider_url(key, Some("securepipeline-stage")),
            format!("awskms:///{key}?region=eu-central-1&profile=securepipeline-stage")
        );
    }

    #[test]
    fn the_identity_token_never_reaches_the_command_line() {
        let commands = oidc_login_commands(None, ("acme", None, Some("alice")), 60);
        assert_eq!(
            commands[2],
            r#"pulumi login --oidc-token "file://$PULUMI_OIDC_TOKEN_FILE" --oidc-org acme --oidc-user alice --oidc-expiration 60m"#
        );
        let self_hosted = oidc_login_commands(
            Some("https://api.pulumi.example.com"),
            ("acme", None, None),
            5,
        );
        assert_eq!(
            self_hosted[2],
            r#"pulumi login https://api.pulumi.example.com --oidc-token "file://$PULUMI_OIDC_TOKEN_FILE" --oidc-org acme --oidc-expiration 5m"#
        );
    }
}
