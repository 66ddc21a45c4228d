//! Grants: the exact actions on the exact ARNs one principal needs for one
//! purpose. Roles are assembled from grants, never from free-form policy.
//!
//! What a role may do to a thing the pipeline owns is granted by that thing
//! (as a bucket grants reading its objects): [`EncryptedBucket`],
//! [`KmsKey`], [`LogGroup`], [`Topic`] and [`StoredValues`] each
//! return exactly the statements needed, and a grant on the encrypted
//! bucket brings the key grant it needs with it, so no role can be given
//! the objects without the key.

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

    /// Read the state of exactly these CloudWatch alarms.
    pub fn alarms_describe(sid: &str, alarm_arns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["cloudwatch:DescribeAlarms"],
            alarm_arns,
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

    /// Read, write and delete exactly these objects (one Pulumi stack's
    /// checkpoint and locks in a self-managed backend).
    pub fn state_objects_read_write(sid: &str, object_arns: Vec<String>) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            object_arns,
        )
    }

    /// Write exactly these objects, never reading or deleting them (a
    /// stack's history and backups, which an update only adds to).
    pub fn objects_write(sid: &str, object_arns: Vec<String>) -> Grant {
        Grant::new(sid, Effect::Allow, &["s3:PutObject"], object_arns)
    }

    /// Read exactly these objects (a backend's metadata file).
    pub fn objects_read(sid: &str, object_arns: Vec<String>) -> Grant {
        Grant::new(sid, Effect::Allow, &["s3:GetObject"], object_arns)
    }

    /// List one bucket's keys, only under these prefix patterns (e.g.
    /// `state/.pulumi/locks/app/dev/*`).
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

/// A KMS key. Whoever reads or writes what it encrypts uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmsKey<'a> {
    arn: &'a str,
}

impl<'a> KmsKey<'a> {
    pub fn new(arn: &'a str) -> Self {
        Self { arn }
    }

    pub fn arn(&self) -> &'a str {
        self.arn
    }

    /// What reading or writing objects it encrypts (SSE-KMS) takes: S3
    /// makes each object's data key with GenerateDataKey and decrypts it
    /// with Decrypt, on reads and on multipart uploads alike (S3 decrypts
    /// the upload's data key for every part). No Encrypt: S3 never
    /// encrypts with the key directly.
    pub fn grant_use(&self, sid: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
            vec![self.arn.to_string()],
        )
    }

    /// Decrypt with the key: what reading objects it encrypts takes, and
    /// nothing that writes.
    pub fn grant_read(&self, sid: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt", "kms:DescribeKey"],
            vec![self.arn.to_string()],
        )
    }

    /// Use the key as a Pulumi stack's secrets provider (`awskms://`):
    /// Pulumi encrypts the stack's random data key with it once (Encrypt)
    /// and decrypts it on every run (Decrypt). No GenerateDataKey: the data
    /// key is made locally.
    pub fn grant_secrets_provider(&self, sid: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt", "kms:Encrypt"],
            vec![self.arn.to_string()],
        )
    }

    /// Decrypt only, as a Pulumi stack's secrets provider: what a preview
    /// needs to read the stack's secrets.
    pub fn grant_decrypt(&self, sid: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["kms:Decrypt"],
            vec![self.arn.to_string()],
        )
    }
}

/// What a service looks up about a bucket itself before it moves objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketLookups {
    /// Its region only (CodeBuild).
    Location,
    /// Its region, and that it is versioned (CodePipeline, which checks its
    /// artifact store).
    LocationAndVersioning,
}

impl BucketLookups {
    fn actions(self) -> &'static [&'static str] {
        match self {
            BucketLookups::Location => &["s3:GetBucketLocation"],
            BucketLookups::LocationAndVersioning => {
                &["s3:GetBucketLocation", "s3:GetBucketVersioning"]
            }
        }
    }
}

/// An S3 bucket whose objects a KMS key encrypts (SSE-KMS, as the artifact
/// buckets are): reading or writing its objects takes the key too, so
/// every grant on the objects brings the key's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedBucket<'a> {
    arn: &'a str,
    key: KmsKey<'a>,
}

impl<'a> EncryptedBucket<'a> {
    pub fn new(arn: &'a str, key: KmsKey<'a>) -> Self {
        Self { arn, key }
    }

    pub fn arn(&self) -> &'a str {
        self.arn
    }

    /// Read the objects under `reads` and write those under `writes` (key
    /// patterns such as `<pipeline>/BuildOutput/*`; either may be empty),
    /// look the bucket up, and use the key for exactly that: statements
    /// `<sid>Read` (when reading), `<sid>Bucket`, `<sid>Write` (when
    /// writing) and `<key_sid>`, which decrypts only when reading and makes
    /// data keys only when writing.
    pub fn grant_objects(
        &self,
        sid: &str,
        key_sid: &str,
        lookups: BucketLookups,
        reads: &[String],
        writes: &[String],
    ) -> Vec<Grant> {
        let objects = |patterns: &[String]| -> Vec<String> {
            patterns
                .iter()
                .map(|k| format!("{}/{k}", self.arn))
                .collect()
        };
        let mut grants = Vec::new();
        if !reads.is_empty() {
            grants.push(Grant::new(
                &format!("{sid}Read"),
                Effect::Allow,
                &["s3:GetObject", "s3:GetObjectVersion"],
                objects(reads),
            ));
        }
        grants.push(Grant::new(
            &format!("{sid}Bucket"),
            Effect::Allow,
            lookups.actions(),
            vec![self.arn.to_string()],
        ));
        if !writes.is_empty() {
            grants.push(Grant::new(
                &format!("{sid}Write"),
                Effect::Allow,
                &["s3:PutObject"],
                objects(writes),
            ));
        }
        let key = match (reads.is_empty(), writes.is_empty()) {
            (true, true) => None,
            (false, true) => Some(self.key.grant_read(key_sid)),
            _ => Some(self.key.grant_use(key_sid)),
        };
        grants.extend(key);
        grants
    }
}

/// A CloudWatch Logs log group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogGroup<'a> {
    arn: &'a str,
}

impl<'a> LogGroup<'a> {
    pub fn new(arn: &'a str) -> Self {
        Self { arn }
    }

    /// Write to the group's streams.
    pub fn grant_write(&self, sid: &str) -> Grant {
        Grant::logs_write(sid, self.arn)
    }
}

/// An SNS topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic<'a> {
    arn: &'a str,
}

impl<'a> Topic<'a> {
    pub fn new(arn: &'a str) -> Self {
        Self { arn }
    }

    pub fn grant_publish(&self, sid: &str) -> Grant {
        Grant::new(
            sid,
            Effect::Allow,
            &["sns:Publish"],
            vec![self.arn.to_string()],
        )
    }
}

/// Values a build reads from a store by reference: exact Secrets Manager
/// secrets or Parameter Store parameters, each named once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValues {
    read_actions: &'static [&'static str],
    arns: Vec<String>,
}

impl StoredValues {
    pub fn secrets(arns: impl IntoIterator<Item = String>) -> Self {
        Self::new(&["secretsmanager:GetSecretValue"], arns)
    }

    pub fn parameters(arns: impl IntoIterator<Item = String>) -> Self {
        // CodeBuild resolves `parameter-store` variables with GetParameters;
        // nothing a stage runs reads them one at a time.
        Self::new(&["ssm:GetParameters"], arns)
    }

    fn new(read_actions: &'static [&'static str], arns: impl IntoIterator<Item = String>) -> Self {
        let mut arns: Vec<String> = arns.into_iter().collect();
        arns.sort();
        arns.dedup();
        Self { read_actions, arns }
    }

    /// Read their values; nothing when there are none.
    pub fn grant_read(&self, sid: &str) -> Option<Grant> {
        (!self.arns.is_empty())
            .then(|| Grant::new(sid, Effect::Allow, self.read_actions, self.arns.clone()))
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
    fn a_grant_on_the_encrypted_bucket_brings_its_key() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/k";
        let bucket = EncryptedBucket::new("arn:aws:s3:::artifacts", KmsKey::new(key));
        let doc = document(&bucket.grant_objects(
            "Artifacts",
            "UseArtifactKey",
            BucketLookups::LocationAndVersioning,
            &["p/SourceOutput/*".into()],
            &["p/BuildOutput/*".into()],
        ));
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "ArtifactsRead", "Effect": "Allow",
                 "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                 "Resource": ["arn:aws:s3:::artifacts/p/SourceOutput/*"]},
                {"Sid": "ArtifactsBucket", "Effect": "Allow",
                 "Action": ["s3:GetBucketLocation", "s3:GetBucketVersioning"],
                 "Resource": ["arn:aws:s3:::artifacts"]},
                {"Sid": "ArtifactsWrite", "Effect": "Allow",
                 "Action": ["s3:PutObject"],
                 "Resource": ["arn:aws:s3:::artifacts/p/BuildOutput/*"]},
                {"Sid": "UseArtifactKey", "Effect": "Allow",
                 "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
                 "Resource": [key]}
            ]})
        );
    }

    #[test]
    fn the_key_is_granted_for_exactly_what_the_objects_grant() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/k";
        let bucket = EncryptedBucket::new("arn:aws:s3:::artifacts", KmsKey::new(key));
        let summary = |grants: Vec<Grant>| -> Vec<(String, Vec<String>)> {
            grants
                .iter()
                .map(|g| {
                    let s = g.statement();
                    (s.sid.unwrap_or_default(), s.actions)
                })
                .collect()
        };
        let owned = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
            pairs
                .iter()
                .map(|(sid, actions)| {
                    (
                        sid.to_string(),
                        actions.iter().map(|a| a.to_string()).collect(),
                    )
                })
                .collect()
        };
        let objects = ["p/BuildOutput/*".to_string()];
        // Reading only: the key to decrypt with, no data keys.
        assert_eq!(
            summary(bucket.grant_objects("In", "Key", BucketLookups::Location, &objects, &[])),
            owned(&[
                ("InRead", &["s3:GetObject", "s3:GetObjectVersion"]),
                ("InBucket", &["s3:GetBucketLocation"]),
                ("Key", &["kms:Decrypt", "kms:DescribeKey"]),
            ])
        );
        // Writing only: no object reads, but the key's Decrypt, which
        // multipart uploads take.
        assert_eq!(
            summary(bucket.grant_objects("Out", "Key", BucketLookups::Location, &[], &objects)),
            owned(&[
                ("OutBucket", &["s3:GetBucketLocation"]),
                ("OutWrite", &["s3:PutObject"]),
                (
                    "Key",
                    &["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
                ),
            ])
        );
    }

    #[test]
    fn secrets_and_parameters_grant_each_one_once_or_nothing() {
        let secret = |name: &str| {
            format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}-AbCdEf")
        };
        let grant = StoredValues::secrets([secret("b"), secret("a"), secret("b")])
            .grant_read("Read")
            .map(|g| g.statement());
        assert_eq!(
            grant.map(|s| (s.actions, s.resources)),
            Some((
                vec!["secretsmanager:GetSecretValue".to_string()],
                vec![secret("a"), secret("b")]
            ))
        );
        assert_eq!(StoredValues::secrets([]).grant_read("Read"), None);
        let parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db".to_string();
        let grant = StoredValues::parameters([parameter.clone()])
            .grant_read("Params")
            .map(|g| g.statement());
        assert_eq!(
            grant.map(|s| (s.actions, s.resources)),
            Some((vec!["ssm:GetParameters".to_string()], vec![parameter]))
        );
        assert_eq!(StoredValues::parameters([]).grant_read("Params"), None);
    }

    #[test]
    fn secrets_provider_keys_are_used_for_exactly_what_pulumi_calls() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let doc = document(&[
            KmsKey::new(key).grant_secrets_provider("UseSecretsProviderKey"),
            KmsKey::new(key).grant_decrypt("DecryptSecretsProviderKey"),
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
