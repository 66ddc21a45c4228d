//! Checks every policy document the provider writes, so that a child role
//! registered directly (or rewritten by a transform) cannot widen access.

use super::policy::{Effect, PolicyDocument, Statement};
use crate::aws::arn::has_wildcard;
use crate::resource::has_unknown;

/// Actions AWS only authorizes on `Resource: "*"` (no resource-level
/// permissions exist for them), with why the provider may need each.
pub const STAR_ONLY_ACTIONS: &[(&str, &str)] = &[
    (
        "sts:GetCallerIdentity",
        "Pulumi deployments learn the account they run in",
    ),
    (
        "ecr:GetAuthorizationToken",
        "Docker builds log in to ECR; the token is not resource-scoped",
    ),
];

/// Actions AWS only authorizes on `Resource: "*"` that a condition scopes
/// instead: each with the condition key that must name exact values.
/// `sts:GetWebIdentityToken` mints a token any service could accept; only
/// the audience condition limits it to the one service the stage logs in
/// to.
pub const CONDITION_SCOPED_STAR_ACTIONS: &[(&str, &str, &str)] = &[(
    "sts:GetWebIdentityToken",
    "ForAllValues:StringEquals",
    "sts:IdentityTokenAudience",
)];

/// Why a `*` resource is wrong for `action` in `statement`, if it is.
fn star_problem(action: &str, statement: &Statement) -> Option<String> {
    if STAR_ONLY_ACTIONS.iter().any(|(star, _)| *star == action) {
        return None;
    }
    let Some((_, operator, key)) = CONDITION_SCOPED_STAR_ACTIONS
        .iter()
        .find(|(scoped, _, _)| *scoped == action)
    else {
        return Some(format!(
            "`{action}` is allowed on every resource; scope it to exact ARNs"
        ));
    };
    let values = statement
        .conditions
        .get(*operator)
        .and_then(|k| k.get(*key));
    let exact = values.is_some_and(|v| {
        !v.is_empty()
            && v.iter()
                .all(|value| !value.is_empty() && !has_wildcard(value))
    });
    (!exact).then(|| {
        format!("`{action}` must be conditioned with {operator} on {key}, naming exact values")
    })
}

/// IAM's limit on the aggregate size of a role's inline policies.
pub const INLINE_POLICY_LIMIT: usize = 10_240;

/// Problems with a permissions policy, each saying what is wrong.
pub fn permissions(doc: &PolicyDocument) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, statement) in doc.statements.iter().enumerate() {
        let at = statement
            .sid
            .clone()
            .unwrap_or_else(|| format!("statement {index}"));
        if statement.principal.is_some() {
            problems.push(format!(
                "{at}: a permissions policy cannot name a principal"
            ));
        }
        if statement.actions.is_empty() {
            problems.push(format!("{at}: names no action"));
        }
        if statement.resources.is_empty() {
            problems.push(format!("{at}: names no resource"));
        }
        // Denying more is always safe; only Allow statements must be exact.
        if statement.effect == Effect::Deny {
            continue;
        }
        for action in &statement.actions {
            if action.contains('*') {
                problems.push(format!(
                    "{at}: action `{action}` is a wildcard; name each action the principal needs"
                ));
            }
        }
        for resource in &statement.resources {
            if has_unknown(resource) {
                continue;
            }
            if resource == "*" {
                if let Some(problem) = statement
                    .actions
                    .iter()
                    .find_map(|a| star_problem(a, statement))
                {
                    problems.push(format!("{at}: {problem}"));
                }
            } else if let Some(problem) = wildcard_problem(resource) {
                problems.push(format!(
                    "{at}: resource `{resource}` {problem}; use the exact ARN"
                ));
            }
        }
        if statement.actions.iter().any(|a| a == "iam:PassRole") {
            let roles_only = statement.resources.iter().all(|r| {
                has_unknown(r) || (r.contains(":iam::") && r.contains(":role/") && !r.contains('*'))
            });
            if !roles_only {
                problems.push(format!("{at}: iam:PassRole must name exact role ARNs"));
            }
            let conditioned = statement
                .conditions
                .get("StringEquals")
                .is_some_and(|keys| keys.contains_key("iam:PassedToService"));
            if !conditioned {
                problems.push(format!(
                    "{at}: iam:PassRole must be conditioned on iam:PassedToService"
                ));
            }
        }
    }
    problems
}

/// Why a resource of an Allow statement names more than exact resources.
/// Besides `*` for [`STAR_ONLY_ACTIONS`], the only wildcard allowed is one
/// trailing `*` where AWS names the resources at run time, under a parent
/// the ARN names exactly: S3 objects (`arn:P:s3:::bucket/prefix*`, keys
/// CodePipeline and Pulumi choose) and log streams
/// (`arn:P:logs:R:A:log-group:name:log-stream:*`, one per build).
fn wildcard_problem(resource: &str) -> Option<&'static str> {
    if resource.contains('?') {
        return Some("has a `?` wildcard");
    }
    if !resource.contains('*') {
        return None;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let [_, _, service, region, account, resource_part] = parts[..] else {
        return Some("has a wildcard and is not an ARN");
    };
    if parts[1..5].iter().any(|p| p.contains('*')) {
        return Some("has a wildcard in its partition, service, region or account");
    }
    let exact = |s: &str| !s.is_empty() && !s.contains('*');
    let stem = resource_part.strip_suffix('*').unwrap_or(resource_part);
    let allowed = match service {
        // `bucket/…*`: the bucket is exact, the wildcard only ends the key.
        "s3" => {
            region.is_empty()
                && account.is_empty()
                && stem
                    .split_once('/')
                    .is_some_and(|(bucket, key)| exact(bucket) && !key.contains('*'))
        }
        "logs" => resource_part
            .strip_prefix("log-group:")
            .and_then(|rest| rest.strip_suffix(":log-stream:*"))
            .is_some_and(exact),
        _ => false,
    };
    (!allowed).then_some(
        "has a wildcard; only S3 object keys in one bucket and the log streams of one log group may end in `*`",
    )
}

/// Problems with a trust policy: exactly one service, confused-deputy
/// conditions present.
pub fn trust(doc: &PolicyDocument) -> Vec<String> {
    let mut problems = Vec::new();
    if doc.statements.len() != 1 {
        problems.push("a trust policy must have exactly one statement".to_string());
    }
    for statement in &doc.statements {
        let services = statement
            .principal
            .as_ref()
            .and_then(|p| (p.len() == 1).then(|| p.get("Service")).flatten());
        match services {
            Some(list) if list.len() == 1 && !list[0].contains('*') => {}
            _ => {
                problems.push("a trust policy must trust exactly one service principal".to_string())
            }
        }
        if statement.effect != Effect::Allow || statement.actions != ["sts:AssumeRole"] {
            problems.push("a trust policy may only allow sts:AssumeRole".to_string());
        }
        let has_source_account = statement
            .conditions
            .get("StringEquals")
            .is_some_and(|keys| keys.contains_key("aws:SourceAccount"));
        if !has_source_account {
            problems.push("a trust policy must condition on aws:SourceAccount".to_string());
        }
    }
    problems
}

/// Aggregate size of inline policies as IAM counts it (minified).
pub fn inline_size<'a>(docs: impl IntoIterator<Item = &'a PolicyDocument>) -> usize {
    docs.into_iter()
        .map(|d| {
            d.to_compact_json()
                .chars()
                .filter(|c| !c.is_whitespace())
                .count()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::grants::{document, trust_policy, Grant, KmsKey};
    use crate::iam::policy::{Conditions, Statement};

    fn allow(actions: &[&str], resources: &[&str]) -> PolicyDocument {
        PolicyDocument::new(vec![Statement {
            sid: Some("S".into()),
            effect: Effect::Allow,
            principal: None,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            conditions: Conditions::new(),
        }])
    }

    #[test]
    fn grants_pass() {
        let doc = document(&[
            Grant::logs_write(
                "Logs",
                "arn:aws:logs:eu-west-1:123456789012:log-group:/sp/build",
            ),
            Grant::pass_role(
                "Pass",
                vec!["arn:aws:iam::123456789012:role/r".into()],
                "codebuild.amazonaws.com",
            ),
            KmsKey::new("arn:aws:kms:eu-west-1:123456789012:key/k").grant_use("Key"),
        ]);
        assert_eq!(permissions(&doc), Vec::<String>::new());
    }

    #[test]
    fn wildcard_actions_and_resources_fail() {
        assert_eq!(permissions(&allow(&["s3:*"], &["arn:aws:s3:::b"])).len(), 1);
        assert_eq!(permissions(&allow(&["s3:GetObject"], &["*"])).len(), 1);
        assert_eq!(
            permissions(&allow(&["s3:GetObject"], &["arn:aws:s3:::*"])).len(),
            1
        );
        assert_eq!(
            permissions(&allow(
                &["logs:PutLogEvents"],
                &["arn:aws:logs:*:*:log-group:x"]
            ))
            .len(),
            1
        );
        assert!(permissions(&allow(&["sts:GetCallerIdentity"], &["*"])).is_empty());
    }

    #[test]
    fn a_transform_cannot_widen_a_resource_with_a_wildcard() {
        for wide in [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-AbCdE?",
            "arn:aws:iam::123456789012:role/deploy-*",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/app/*",
            "arn:aws:kms:eu-west-1:123456789012:key/*",
            "arn:aws:codepipeline:eu-west-1:123456789012:app*",
            "arn:aws:s3:::state-*/x",
            "arn:aws:s3:::state/a*/b*",
            "arn:aws:s3:::state/a?",
            "arn:aws:logs:eu-west-1:123456789012:log-group:*:log-stream:*",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/sp/*",
        ] {
            let problems = permissions(&allow(&["secretsmanager:GetSecretValue"], &[wide]));
            assert_eq!(problems.len(), 1, "{wide}: {problems:?}");
            assert!(problems[0].contains("wildcard"), "{wide}: {problems:?}");
        }
        for exact_parent in [
            "arn:aws:s3:::artifacts/*",
            "arn:aws:s3:::state/pulumi/.pulumi/stacks/web/dev.json*",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/sp/build:log-stream:*",
        ] {
            assert!(
                permissions(&allow(&["s3:GetObject"], &[exact_parent])).is_empty(),
                "{exact_parent}"
            );
        }
    }

    #[test]
    fn identity_tokens_need_an_exact_audience() {
        let scoped = document(&[Grant::web_identity_token(
            "Token",
            "urn:pulumi:org:acme",
            300,
        )]);
        assert_eq!(permissions(&scoped), Vec::<String>::new());
        let unconditioned = permissions(&allow(&["sts:GetWebIdentityToken"], &["*"]));
        assert_eq!(
            unconditioned,
            vec!["S: `sts:GetWebIdentityToken` must be conditioned with ForAllValues:StringEquals on sts:IdentityTokenAudience, naming exact values"]
        );
        let wide = document(&[Grant::web_identity_token("Token", "urn:pulumi:org:*", 300)]);
        assert_eq!(permissions(&wide).len(), 1, "{:?}", permissions(&wide));
        // The audience condition scopes only the token: it does not make
        // other actions acceptable on `*`.
        let mut smuggled = scoped.clone();
        smuggled.statements[0]
            .actions
            .push("secretsmanager:GetSecretValue".into());
        assert_eq!(
            permissions(&smuggled),
            vec!["Token: `secretsmanager:GetSecretValue` is allowed on every resource; scope it to exact ARNs"]
        );
    }

    #[test]
    fn unconditioned_or_wide_pass_role_fails() {
        let problems = permissions(&allow(
            &["iam:PassRole"],
            &["arn:aws:iam::123456789012:role/*"],
        ));
        assert!(problems.iter().any(|p| p.contains("exact role ARNs")));
        assert!(problems.iter().any(|p| p.contains("iam:PassedToService")));
    }

    #[test]
    fn trust_needs_one_service_and_source_account() {
        assert!(trust(&trust_policy(
            "codebuild.amazonaws.com",
            "123456789012",
            None
        ))
        .is_empty());
        let mut doc = trust_policy("codebuild.amazonaws.com", "123456789012", None);
        doc.statements[0].conditions.clear();
        assert_eq!(
            trust(&doc),
            vec!["a trust policy must condition on aws:SourceAccount"]
        );
    }

    #[test]
    fn resources_built_from_unknown_values_are_checked_later() {
        let unknown_objects = format!("{}/*", crate::protocol::json::UNKNOWN);
        assert!(permissions(&allow(&["s3:GetObject"], &[&unknown_objects])).is_empty());
    }

    #[test]
    fn inline_size_counts_minified_json() {
        let doc = allow(&["s3:GetObject"], &["arn:aws:s3:::b/*"]);
        assert_eq!(inline_size([&doc]), doc.to_compact_json().len());
    }
}
