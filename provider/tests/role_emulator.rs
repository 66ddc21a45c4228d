//! `securepipeline:aws:Role` against the AWS emulator: create, read back
//! the trust policy and every inline policy, drift (widened and added
//! policies, an attached managed policy, a widened trust), restore, delete.

mod support;

use std::collections::BTreeMap;

use securepipeline::aws::retry::is_code;
use securepipeline::engine_log::EngineLog;
use securepipeline::iam::policy::{Conditions, Effect, Statement};
use securepipeline::iam::{grants, lint, Grant, PolicyDocument};
use securepipeline::resource::{CheckContext, Lifecycle};
use securepipeline::resources::role::{Role, RoleInputs};
use securepipeline::tags::{self, Tags};

const URN: &str = "urn:pulumi:test::securepipeline::securepipeline:aws:Role::build-role";
const PROJECTS: &str = "arn:aws:codebuild:us-east-1:123456789012:project/app-x1y2-build-k3j9a0qz";

fn program_inputs() -> RoleInputs {
    RoleInputs {
        name_prefix: "app-x1y2-build".into(),
        role_name: None,
        description: "CodeBuild role of pipeline app".into(),
        service: "codebuild.amazonaws.com".into(),
        source_arn: Some(PROJECTS.into()),
        trust_policy: None,
        policies: BTreeMap::from([(
            "build".to_string(),
            grants::document(&[
                Grant::logs_write("Logs", "arn:aws:logs:us-east-1:123456789012:log-group:/securepipeline/app-build-abcdefgh"),
                grants::KmsKey::new("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab").grant_use("Key"),
            ]),
        )]),
        managed_policy_arns: Vec::new(),
        tags: Tags::from([("team".to_string(), "platform".to_string())]),
    }
}

fn events_inputs() -> RoleInputs {
    RoleInputs {
        name_prefix: "app-x1y2-events".into(),
        description: "Lets EventBridge start pipeline app".into(),
        service: "events.amazonaws.com".into(),
        source_arn: None,
        policies: BTreeMap::from([(
            "start-pipeline".to_string(),
            grants::document(&[Grant::pipeline_start(
                "StartPipeline",
                "arn:aws:codepipeline:us-east-1:123456789012:app-x1y2-pipeline-abcdefgh",
            )]),
        )]),
        ..program_inputs()
    }
}

fn allow_everything() -> Statement {
    Statement {
        sid: Some("Everything".into()),
        effect: Effect::Allow,
        principal: None,
        actions: vec!["s3:*".into()],
        resources: vec!["*".into()],
        conditions: Conditions::new(),
    }
}

async fn live_trust(iam: &aws_sdk_iam::Client, name: &str) -> PolicyDocument {
    let role = iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    PolicyDocument::parse_aws(role.assume_role_policy_document().unwrap()).unwrap()
}

async fn live_policy_names(iam: &aws_sdk_iam::Client, name: &str) -> Vec<String> {
    iam.list_role_policies()
        .role_name(name)
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec()
}

/// Live tags as the program states them: the create's ownership token aside.
async fn live_tags(iam: &aws_sdk_iam::Client, name: &str) -> Tags {
    iam.list_role_tags()
        .role_name(name)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .filter(|(key, _)| key != tags::CREATE_TOKEN_KEY)
        .collect()
}

async fn attach_managed_policy(iam: &aws_sdk_iam::Client, role: &str, policy_name: &str) -> String {
    let document = PolicyDocument::new(vec![allow_everything()]).to_compact_json();
    let created = iam
        .create_policy()
        .policy_name(policy_name)
        .policy_document(document)
        .send()
        .await
        .unwrap();
    let arn = created.policy.unwrap().arn.unwrap();
    iam.attach_role_policy()
        .role_name(role)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    arn
}

/// G10: the trust policy IAM holds trusts exactly one service, only on
/// behalf of this account, and (when given) only for the source ARN.
fn assert_trusts_exactly(
    trust: &PolicyDocument,
    service: &str,
    account: &str,
    source_arn: Option<&str>,
) {
    assert_eq!(trust.statements.len(), 1, "{trust:?}");
    let statement = &trust.statements[0];
    assert_eq!(statement.effect, Effect::Allow);
    assert_eq!(statement.actions, vec!["sts:AssumeRole"]);
    assert_eq!(
        statement.principal,
        Some(BTreeMap::from([(
            "Service".to_string(),
            vec![service.to_string()]
        )]))
    );
    assert_eq!(
        statement.conditions["StringEquals"]["aws:SourceAccount"],
        vec![account]
    );
    match source_arn {
        Some(arn) => assert_eq!(
            statement.conditions.get("ArnEquals"),
            Some(&BTreeMap::from([(
                "aws:SourceArn".to_string(),
                vec![arn.to_string()]
            )]))
        ),
        None => assert!(!statement.conditions.contains_key("ArnEquals"), "{trust:?}"),
    }
    assert!(lint::trust(trust).is_empty());
}

#[tokio::test]
async fn role_is_created_read_back_restored_and_deleted() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "build-role",
        random_seed: b"role-emulator",
        aws: Some(&aws),
    };
    let inputs = Role::check(&check_ctx, None, program_inputs()).unwrap();
    let name = inputs.role_name.clone().unwrap();

    let (id, outputs) = Role::create(&ctx, &inputs).await.unwrap();
    assert_eq!(id, name);
    assert_eq!(outputs.arn, aws.arns().iam_role(&name));
    assert_eq!(Some(&outputs.trust_policy), inputs.trust_policy.as_ref());

    // Every guarantee, read straight from IAM.
    let iam = &aws.clients().iam;
    let role = iam
        .get_role()
        .role_name(&name)
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(role.role_id(), outputs.role_id);
    assert_eq!(role.max_session_duration(), Some(3600));
    assert_eq!(role.description(), Some(inputs.description.as_str()));
    let trust = live_trust(iam, &name).await;
    assert_trusts_exactly(
        &trust,
        "codebuild.amazonaws.com",
        &aws.account_id,
        Some(PROJECTS),
    );
    assert_eq!(Some(trust), inputs.trust_policy);
    assert_eq!(live_policy_names(iam, &name).await, vec!["build"]);
    let text = iam
        .get_role_policy()
        .role_name(&name)
        .policy_name("build")
        .send()
        .await
        .unwrap()
        .policy_document;
    let build_policy = PolicyDocument::parse_aws(&text).unwrap();
    assert_eq!(build_policy, inputs.policies["build"]);
    assert!(
        lint::permissions(&build_policy).is_empty(),
        "G10: the linter finds nothing"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
    let tags = live_tags(iam, &name).await;
    assert_eq!(tags, inputs.tags);
    assert_eq!(tags[tags::MANAGED_BY_KEY], tags::MANAGED_BY_VALUE);

    // Read returns exactly what was asked for.
    let (live, live_outputs) = Role::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(live, inputs);
    assert_eq!(live_outputs, outputs);

    // Drift: the policy widened, a policy and a managed policy added, the
    // trust opened to a second service, a tag removed, the description
    // rewritten.
    let mut widened = inputs.policies["build"].clone();
    widened.statements.push(allow_everything());
    iam.put_role_policy()
        .role_name(&name)
        .policy_name("build")
        .policy_document(widened.to_compact_json())
        .send()
        .await
        .unwrap();
    let extra = PolicyDocument::new(vec![allow_everything()]);
    iam.put_role_policy()
        .role_name(&name)
        .policy_name("extra")
        .policy_document(extra.to_compact_json())
        .send()
        .await
        .unwrap();
    let managed = attach_managed_policy(iam, &name, "added-by-hand").await;
    let mut wider_trust = inputs.trust_policy.clone().unwrap();
    wider_trust.statements[0]
        .principal
        .as_mut()
        .unwrap()
        .insert(
            "Service".into(),
            vec!["codebuild.amazonaws.com".into(), "ec2.amazonaws.com".into()],
        );
    iam.update_assume_role_policy()
        .role_name(&name)
        .policy_document(wider_trust.to_compact_json())
        .send()
        .await
        .unwrap();
    iam.untag_role()
        .role_name(&name)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    iam.update_role()
        .role_name(&name)
        .description("changed by hand")
        .send()
        .await
        .unwrap();

    let (drifted, drifted_outputs) = Role::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(drifted.policies["build"], widened);
    assert_eq!(drifted.policies["extra"], extra);
    assert_eq!(drifted.managed_policy_arns, vec![managed.clone()]);
    assert_eq!(drifted.trust_policy.as_ref(), Some(&wider_trust));
    assert_eq!(drifted_outputs.trust_policy, wider_trust);
    assert!(!drifted.tags.contains_key("team"));
    assert_eq!(drifted.description, "changed by hand");
    // Refresh would record the drifted state; a check of it names each problem.
    let failures = Role::check(&check_ctx, Some(&inputs), drifted.clone()).unwrap_err();
    let properties: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
    for property in [
        "trustPolicy",
        "policies.build",
        "policies.extra",
        "managedPolicyArns",
    ] {
        assert!(
            properties.contains(&property),
            "{property} missing from {properties:?}"
        );
    }

    // The next update restores everything.
    let restored_outputs = Role::update(&ctx, &id, &drifted, &inputs, &drifted_outputs)
        .await
        .unwrap();
    assert_eq!(restored_outputs, outputs);
    let (restored, _) = Role::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    assert_eq!(restored, inputs);
    assert_trusts_exactly(
        &live_trust(iam, &name).await,
        "codebuild.amazonaws.com",
        &aws.account_id,
        Some(PROJECTS),
    );
    assert_eq!(live_policy_names(iam, &name).await, vec!["build"]);

    // Policies and tags change in place; a removed policy is deleted.
    let mut changed = inputs.clone();
    changed.policies = BTreeMap::from([(
        "logs-only".to_string(),
        grants::document(&[Grant::logs_write(
            "Logs",
            "arn:aws:logs:us-east-1:123456789012:log-group:/securepipeline/app-build-abcdefgh",
        )]),
    )]);
    changed.tags.remove("team");
    changed.tags.insert("owner".into(), "ci".into());
    Role::update(&ctx, &id, &inputs, &changed, &outputs)
        .await
        .unwrap();
    let (live, _) = Role::read(&ctx, &id, &changed).await.unwrap().unwrap();
    assert_eq!(live, changed);

    // Delete; the role then reads as gone; deleting again succeeds.
    Role::delete(&ctx, &id, &changed, &outputs).await.unwrap();
    let gone = iam.get_role().role_name(&name).send().await.unwrap_err();
    assert!(is_code(&gone, &["NoSuchEntity"]), "{gone:?}");
    assert!(Role::read(&ctx, &id, &changed).await.unwrap().is_none());
    Role::delete(&ctx, &id, &changed, &outputs).await.unwrap();
}

#[tokio::test]
async fn trust_is_computed_at_create_when_check_did_not_know_the_account() {
    let emulator = support::Emulator::start();
    let aws = emulator.context().await;
    let log = EngineLog::default();
    let ctx = support::op(&aws, &log, URN);
    let check_ctx = CheckContext {
        name: "events-role",
        random_seed: b"events-role",
        aws: None,
    };
    let inputs = Role::check(&check_ctx, None, events_inputs()).unwrap();
    assert_eq!(inputs.trust_policy, None);

    let (id, outputs) = Role::create(&ctx, &inputs).await.unwrap();
    let iam = &aws.clients().iam;
    let trust = live_trust(iam, &id).await;
    assert_trusts_exactly(&trust, "events.amazonaws.com", &aws.account_id, None);
    assert_eq!(
        outputs.trust_policy, trust,
        "the state holds the trust policy"
    );

    // Trust opened to everyone reads back as exactly that, and the next
    // update puts the computed one back.
    let everyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#;
    iam.update_assume_role_policy()
        .role_name(&id)
        .policy_document(everyone)
        .send()
        .await
        .unwrap();
    let (drifted, drifted_outputs) = Role::read(&ctx, &id, &inputs).await.unwrap().unwrap();
    let opened = drifted
        .trust_policy
        .as_ref()
        .expect("the live trust policy");
    assert_eq!(
        opened.statements[0]
            .principal
            .as_ref()
            .map(|p| p["AWS"].clone()),
        Some(vec!["*".to_string()])
    );
    Role::update(&ctx, &id, &drifted, &inputs, &drifted_outputs)
        .await
        .unwrap();
    assert_trusts_exactly(
        &live_trust(iam, &id).await,
        "events.amazonaws.com",
        &aws.account_id,
        None,
    );

    // Delete empties a role that drift filled: inline and managed policies.
    iam.put_role_policy()
        .role_name(&id)
        .policy_name("added-by-hand")
        .policy_document(PolicyDocument::new(vec![allow_everything()]).to_compact_json())
        .send()
        .await
        .unwrap();
    attach_managed_policy(iam, &id, "attached-by-hand").await;
    Role::delete(&ctx, &id, &inputs, &outputs).await.unwrap();
    assert!(Role::read(&ctx, &id, &inputs).await.unwrap().is_none());
}
