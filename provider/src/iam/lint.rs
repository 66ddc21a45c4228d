//! Checks every policy document the provider writes, so that a child role
//! registered directly (or rewritten by a transform) cannot widen access.

use super::policy::{Effect, PolicyDocument};
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
                if let Some(action) = statement
                    .actions
                    .iter()
                    .find(|a| !STAR_ONLY_ACTIONS.iter().any(|(star, _)| star == a))
                {
                    problems.push(format!(
                        "{at}: `{action}` is allowed on every resource; scope it to exact ARNs"
                    ));
                }
            } else if let Some(wild) = wildcard_in_identity(resource) {
                problems.push(format!(
                    "{at}: resource `{resource}` has a wildcard {wild}; use the exact ARN"
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

/// A wildcard in the partition, service, region or account of an ARN, or a
/// resource part that is only a wildcard.
fn wildcard_in_identity(resource: &str) -> Option<&'static str> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() < 6 {
        return Some("(not an ARN)");
    }
    if parts[1..5].iter().any(|p| p.contains('*')) {
        return Some("in its partition, service, region or account");
    }
    let resource_part = parts[5];
    if resource_part == "*" || resource_part.starts_with('*') {
        return Some("for its whole resource part");
    }
    None
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
    use crate::iam::grants::{document, trust_policy, Grant};
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
            Grant::key_use("Key", "arn:aws:kms:eu-west-1:123456789012:key/k"),
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
