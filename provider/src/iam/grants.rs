//! Grants: the exact actions on the exact ARNs one principal needs for one
//! purpose. Roles are assembled from grants, never from free-form policy.

use std::collections::BTreeMap;

use super::policy::{Conditions, Effect, PolicyDocument, Statement};

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    sid: String,
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Conditions,
}

impl Grant {
    fn new(sid: &str, effect: Effect, actions: &[&str], resources: Vec<String>) -> Self {
        Self {
            sid: sid.into(),
            effect,
            actions: actions.iter().map(|a| (*a).to_string()).collect(),
            resources,
            conditions: Conditions::new(),
        }
    }

    fn when(mut self, operator: &str, key: &str, values: Vec<String>) -> Self {
        self.conditions
            .entry(operator.into())
            .or_default()
            .insert(key.into(), values);
        self
    }

    pub fn statement(&self) -> Statement {
        Statement {
            sid: Some(self.sid.clone()),
            effect: self.effect,
            principal: None,
            actions: self.actions.clone(),
            resources: self.resources.clone(),
            conditions: self.conditions.clone(),
        }
    }

    /// Read and write pipeline artifacts in one bucket.
    pub fn artifacts_read_write(sid: &str, bucket_arn: &str) -> Vec<Grant> {
        vec![
            Grant::new(
                &format!("{sid}Objects"),
                Effect::Allow,
                &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                vec![format!("{bucket_arn}/*")],
            ),
            Grant::new(
                &format!("{sid}Bucket"),
                Effect::Allow,
                &[
                    "s3:GetBucketLocation",
                    "s3:GetBucketVersioning",
                    "s3:ListBucket",
                ],
                vec![bucket_arn.to_string()],
            ),
        ]
    }

    /// Read pipeline artifacts in one bucket, only under these key
    /// patterns (e.g. `<pipeline>/BuildOutput/*`).
    pub fn artifacts_read(sid: &str, bucket_arn: &str, key_patterns: &[String]) -> Vec<Grant> {
        vec![
            Grant::new(
                &format!("{sid}Read"),
                Effect::Allow,
                &["s3:GetObject", "s3:GetObjectVersion"],
                key_patterns
                    .iter()
                    .map(|k| format!("{bucket_arn}/{k}"))
                    .collect(),
            ),
            Grant::new(
                &format!("{sid}Bucket"),
                Effect::Allow,
                &["s3:GetBucketLocation", "s3:GetBucketVersioning"],
                vec![bucket_arn.to_string()],
            ),
        ]
    }

    /// Write pipeline artifacts in one bucket, only under these key
    /// patterns.
    pub fn artifacts_write(sid: &str, bucket_arn: &str, key_patterns: &[String]) -> Grant {
        Grant::new(
            &format!("{sid}Write"),
            Effect::Allow,
            &["s3:PutObject"],
            key_patterns
                .iter()
                .map(|k| format!("{bucket_arn}/{k}"))
                .collect(),
        )
    }

    /// Encrypt and decrypt with one KMS key.
    pub fn key_use(sid: &str, key_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &[
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
            ],
            vec![key_arn.to_string()],
        )
    }

    /// Decrypt with one KMS key: read what others encrypted with it.
    pub fn key_decrypt(sid: &str, key_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt", "kms:DescribeKey"],
            vec![key_arn.to_string()],
        )
    }

    /// A Pulumi stack's secrets provider key (`awskms://`): Pulumi encrypts
    /// the stack's random data key with it once (Encrypt) and decrypts it on
    /// every run (Decrypt). No GenerateDataKey: the data key is made
    /// locally.
    pub fn secrets_provider_key(sid: &str, key_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt", "kms:Encrypt"],
            vec![key_arn.to_string()],
        )
    }

    /// Decrypt with a Pulumi stack's secrets provider key only: what a
    /// preview needs to read the stack's secrets.
    pub fn secrets_provider_key_decrypt(sid: &str, key_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt"],
            vec![key_arn.to_string()],
        )
    }

    /// Obtain a web identity token (IAM outbound identity federation) for
    /// exactly one audience, living at most `max_seconds`. STS authorizes
    /// `sts:GetWebIdentityToken` on `*` only; the audience condition is what
    /// scopes it.
    pub fn web_identity_token(sid: &str, audience: &str, max_seconds: u32) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["sts:GetWebIdentityToken"],
            vec!["*".into()],
        )
        .when(
            "ForAllValues:StringEquals",
            "sts:IdentityTokenAudience",
            vec![audience.to_string()],
        )
        .when(
            "NumericLessThanEquals",
            "sts:DurationSeconds",
            vec![max_seconds.to_string()],
        )
    }

    /// Write to the streams of one log group.
    pub fn logs_write(sid: &str, log_group_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![
                log_group_arn.to_string(),
                format!("{log_group_arn}:log-stream:*"),
            ],
        )
    }

    /// Start, watch and stop builds of exactly these projects.
    pub fn builds_run(sid: &str, project_arns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &[
                "codebuild:BatchGetBuilds",
                "codebuild:StartBuild",
                "codebuild:StopBuild",
            ],
            project_arns,
        )
    }

    /// Use one source connection, for one repository only.
    pub fn connection_use(sid: &str, connection_arn: &str, repository: &str) -> Grant {
        let (action, key) = if connection_arn.contains(":codeconnections:") {
            (
                "codeconnections:UseConnection",
                "codeconnections:FullRepositoryId",
            )
        } else {
            (
                "codestar-connections:UseConnection",
                "codestar-connections:FullRepositoryId",
            )
        };
        Grant::new(
            sid,
            Effect::Allow,
            &[action],
            vec![connection_arn.to_string()],
        )
        .when("StringEquals", key, vec![repository.to_string()])
    }

    /// Hand exactly these roles to exactly one service.
    pub fn pass_role(sid: &str, role_arns: Vec<String>, service: &str) -> Grant {
        Grant::new(sid, Effect::Allow, &["iam:PassRole"], role_arns).when(
            "StringEquals",
            "iam:PassedToService",
            vec![service.to_string()],
        )
    }

    /// Start executions of one pipeline.
    pub fn pipeline_start(sid: &str, pipeline_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["codepipeline:StartPipelineExecution"],
            vec![pipeline_arn.to_string()],
        )
    }

    /// Read exactly these Secrets Manager secrets.
    pub fn secrets_read(sid: &str, secret_arns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["secretsmanager:GetSecretValue"],
            secret_arns,
        )
    }

    /// Read exactly these Parameter Store parameters.
    pub fn parameters_read(sid: &str, parameter_arns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["ssm:GetParameter", "ssm:GetParameters"],
            parameter_arns,
        )
    }

    /// Assume one role (a deployment's target role).
    pub fn assume_role(sid: &str, role_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["sts:AssumeRole"],
            vec![role_arn.to_string()],
        )
    }

    /// Publish to one topic.
    pub fn topic_publish(sid: &str, topic_arn: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["sns:Publish"],
            vec![topic_arn.to_string()],
        )
    }

    /// Read, write and delete exactly these objects: one Pulumi stack's
    /// checkpoint, locks, history and backups in a self-managed backend.
    pub fn state_objects_read_write(sid: &str, object_arns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            object_arns,
        )
    }

    /// Read exactly these objects (a backend's metadata file).
    pub fn objects_read(sid: &str, object_arns: Vec<String>) -> Grant {
        Grant::new(sid, Effect::Allow, &["s3:GetObject"], object_arns)
    }

    /// List one bucket's keys, only under these prefix patterns (e.g.
    /// `state/.pulumi/locks/organization/app/dev/*`).
    pub fn bucket_list_under(sid: &str, bucket_arn: &str, prefix_patterns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["s3:ListBucket"],
            vec![bucket_arn.to_string()],
        )
        .when("StringLike", "s3:prefix", prefix_patterns)
    }

    /// Explicitly deny listing one bucket under these prefix patterns (what
    /// another principal's keys are named is not this one's business).
    pub fn deny_bucket_list_under(
        sid: &str,
        bucket_arn: &str,
        prefix_patterns: Vec<String>,
    ) -> Grant {
        Grant::new(
            sid,
            Effect::Deny,
            &["s3:ListBucket"],
            vec![bucket_arn.to_string()],
        )
        .when("StringLike", "s3:prefix", prefix_patterns)
    }

    /// Explicitly deny every action on resources this principal must never
    /// touch (production state, secrets and roles for non-production stages).
    pub fn deny_all(sid: &str, service_actions: &[&str], resources: Vec<String>) -> Grant {
        Grant::new(sid, Effect::Deny, service_actions, resources)
    }
}

/// A policy document made of these grants, in order.
pub fn document(grants: &[Grant]) -> PolicyDocument {
    PolicyDocument::new(grants.iter().map(Grant::statement).collect())
}

/// A trust policy: only `service` may assume the role, only on behalf of
/// this account, and (where the service sends it) only for `source_arn`.
pub fn trust_policy(
    service: &str,
    source_account: &str,
    source_arn: Option<&str>,
) -> PolicyDocument {
    let mut conditions = Conditions::new();
    conditions.insert(
        "StringEquals".into(),
        BTreeMap::from([(
            "aws:SourceAccount".to_string(),
            vec![source_account.to_string()],
        )]),
    );
    if let Some(arn) = source_arn {
        conditions.insert(
            "ArnEquals".into(),
            BTreeMap::from([("aws:SourceArn".to_string(), vec![arn.to_string()])]),
        );
    }
    PolicyDocument::new(vec![Statement {
        sid: Some("TrustedService".into()),
        effect: Effect::Allow,
        principal: Some(BTreeMap::from([(
            "Service".to_string(),
            vec![service.to_string()],
        )])),
        actions: vec!["sts:AssumeRole".into()],
        resources: Vec::new(),
        conditions,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pass_role_is_scoped_and_conditioned() {
        let doc = document(&[Grant::pass_role(
            "PassBuildRole",
            vec!["arn:aws:iam::123456789012:role/b".into()],
            "codebuild.amazonaws.com",
        )]);
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "PassBuildRole", "Effect": "Allow", "Action": ["iam:PassRole"],
                "Resource": ["arn:aws:iam::123456789012:role/b"],
                "Condition": {"StringEquals": {"iam:PassedToService": ["codebuild.amazonaws.com"]}}
            }]})
        );
    }

    #[test]
    fn secrets_provider_keys_are_used_for_exactly_what_pulumi_calls() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let doc = document(&[
            Grant::secrets_provider_key("UseSecretsProviderKey", key),
            Grant::secrets_provider_key_decrypt("DecryptSecretsProviderKey", key),
        ]);
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "UseSecretsProviderKey", "Effect": "Allow",
                 "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": [key]},
                {"Sid": "DecryptSecretsProviderKey", "Effect": "Allow",
                 "Action": ["kms:Decrypt"], "Resource": [key]}
            ]})
        );
    }

    #[test]
    fn web_identity_tokens_are_limited_to_one_audience_and_lifetime() {
        let doc = document(&[Grant::web_identity_token(
            "GetPulumiCloudIdentityToken",
            "urn:pulumi:org:acme",
            300,
        )]);
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "GetPulumiCloudIdentityToken", "Effect": "Allow",
                "Action": ["sts:GetWebIdentityToken"], "Resource": ["*"],
                "Condition": {
                    "ForAllValues:StringEquals": {"sts:IdentityTokenAudience": ["urn:pulumi:org:acme"]},
                    "NumericLessThanEquals": {"sts:DurationSeconds": ["300"]}
                }
            }]})
        );
    }

    #[test]
    fn connection_use_is_limited_to_the_repository() {
        let grant = Grant::connection_use(
            "Source",
            "arn:aws:codeconnections:eu-west-1:123456789012:connection/x",
            "org/app",
        );
        let statement = grant.statement();
        assert_eq!(statement.actions, vec!["codeconnections:UseConnection"]);
        assert_eq!(
            statement.conditions["StringEquals"]["codeconnections:FullRepositoryId"],
            vec!["org/app"]
        );
    }

    #[test]
    fn trust_policy_names_one_service_and_the_source() {
        let doc = trust_policy(
            "events.amazonaws.com",
            "123456789012",
            Some("arn:aws:events:eu-west-1:123456789012:rule/r"),
        );
        let statement = &doc.statements[0];
        assert_eq!(
            statement.principal.as_ref().unwrap()["Service"],
            vec!["events.amazonaws.com"]
        );
        assert_eq!(
            statement.conditions["StringEquals"]["aws:SourceAccount"],
            vec!["123456789012"]
        );
        assert_eq!(
            statement.conditions["ArnEquals"]["aws:SourceArn"],
            vec!["arn:aws:events:eu-west-1:123456789012:rule/r"]
        );
    }
}
