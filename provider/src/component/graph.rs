//! The graph of a SecurePipeline's children: which children it has and
//! which each depends on. Pure: computed from the arguments and the
//! pipeline's region alone, before anything is registered, so that every
//! registration's `dependencies` come from one place.

use std::collections::BTreeMap;

use super::args::SecurePipelineArgs;
use super::deploy;

/// Children by purpose (a child is named `<component>-<purpose>`), each
/// with the purposes of the children it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildGraph {
    children: BTreeMap<String, Vec<String>>,
}

impl ChildGraph {
    /// The children of the pipeline `args` describes in region `home`.
    pub fn plan(args: &SecurePipelineArgs, home: &str) -> Self {
        let deployments = args.deployments.as_deref().unwrap_or_default();
        let extra_regions = deploy::extra_regions(args, home);
        // A region's key and artifact bucket: the home region's are `key`
        // and `artifacts`, another region's carry its name.
        let key_in = |r: &str| {
            if r == home {
                "key".to_string()
            } else {
                format!("key-{r}")
            }
        };
        let bucket_in = |r: &str| {
            if r == home {
                "artifacts".to_string()
            } else {
                format!("artifacts-{r}")
            }
        };
        // The projects of the stages and of their previews, each with the
        // region it runs in.
        let stage_projects: Vec<(String, &str)> = deployments
            .iter()
            .map(|d| (deploy::purpose(d), deploy::region(d, home)))
            .chain(
                deployments
                    .iter()
                    .filter(|d| deploy::has_preview(d))
                    .map(|d| (deploy::preview_purpose(d), deploy::region(d, home))),
            )
            .collect();

        let mut children = BTreeMap::new();
        let mut add = |purpose: String, depends_on: Vec<String>| {
            children.insert(purpose, depends_on);
        };
        // Keys and the connection depend on nothing.
        add("key".into(), vec![]);
        for r in &extra_regions {
            add(key_in(r), vec![]);
        }
        add("source".into(), vec![]);
        // Storage is encrypted with its region's key.
        add("artifacts".into(), vec![key_in(home)]);
        for r in &extra_regions {
            add(bucket_in(r), vec![key_in(r)]);
        }
        add("build-logs".into(), vec![key_in(home)]);
        for (purpose, r) in &stage_projects {
            add(format!("{purpose}-logs"), vec![key_in(r)]);
        }
        add("notifications".into(), vec![key_in(home)]);
        // A project's role is granted its region's store and its log group;
        // the project runs under that role, writing to that log group.
        add(
            "build-role".into(),
            vec![key_in(home), bucket_in(home), "build-logs".into()],
        );
        add(
            "build".into(),
            vec![key_in(home), "build-role".into(), "build-logs".into()],
        );
        for (purpose, r) in &stage_projects {
            add(
                format!("{purpose}-role"),
                vec![key_in(r), bucket_in(r), format!("{purpose}-logs")],
            );
            add(
                purpose.clone(),
                vec![
                    key_in(r),
                    format!("{purpose}-role"),
                    format!("{purpose}-logs"),
                ],
            );
        }
        // The pipeline's role is granted every store and project; the
        // pipeline uses all of them.
        let mut pipeline_uses: Vec<String> = std::iter::once(key_in(home))
            .chain(extra_regions.iter().map(|r| key_in(r)))
            .chain(
                ["artifacts", "source", "build", "notifications"]
                    .into_iter()
                    .map(String::from),
            )
            .chain(extra_regions.iter().map(|r| bucket_in(r)))
            .chain(stage_projects.iter().map(|(purpose, _)| purpose.clone()))
            .collect();
        add("pipeline-role".into(), pipeline_uses.clone());
        pipeline_uses.push("pipeline-role".into());
        add("pipeline".into(), pipeline_uses);
        // Notifications of the pipeline's executions go to the topic; the
        // schedule starts the pipeline through its own role.
        add(
            "notify".into(),
            vec!["pipeline".into(), "notifications".into()],
        );
        if args.schedule.is_some() {
            add("events-role".into(), vec!["pipeline".into()]);
            add(
                "schedule".into(),
                vec!["pipeline".into(), "events-role".into()],
            );
        }
        ChildGraph { children }
    }

    /// The purposes of the children `purpose` depends on, or `None` when
    /// the pipeline has no such child.
    pub fn dependencies(&self, purpose: &str) -> Option<&[String]> {
        self.children.get(purpose).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn graph(args: serde_json::Value) -> ChildGraph {
        let args: SecurePipelineArgs = serde_json::from_value(args).unwrap();
        ChildGraph::plan(&args, "eu-west-1")
    }

    fn purposes(graph: &ChildGraph) -> BTreeSet<&str> {
        graph.children.keys().map(String::as_str).collect()
    }

    fn deps<'a>(graph: &'a ChildGraph, purpose: &str) -> BTreeSet<&'a str> {
        graph
            .dependencies(purpose)
            .unwrap_or_else(|| panic!("no child `{purpose}`"))
            .iter()
            .map(String::as_str)
            .collect()
    }

    /// The children in an order that registers each after its
    /// dependencies; fails on a missing dependency or a cycle.
    fn registration_order(graph: &ChildGraph) -> Vec<String> {
        for (purpose, depends_on) in &graph.children {
            for d in depends_on {
                assert!(
                    graph.children.contains_key(d),
                    "`{purpose}` depends on `{d}`, which is not a child"
                );
            }
        }
        let mut done: Vec<String> = Vec::new();
        while done.len() < graph.children.len() {
            let ready: Vec<String> = graph
                .children
                .iter()
                .filter(|(purpose, _)| !done.contains(purpose))
                .filter(|(_, depends_on)| depends_on.iter().all(|d| done.contains(d)))
                .map(|(purpose, _)| purpose.clone())
                .collect();
            assert!(!ready.is_empty(), "cycle among {:?}", graph.children);
            done.extend(ready);
        }
        done
    }

    const MINIMAL: &[&str] = &[
        "key",
        "source",
        "artifacts",
        "build-logs",
        "notifications",
        "build-role",
        "build",
        "pipeline-role",
        "pipeline",
        "notify",
    ];

    #[test]
    fn a_minimal_pipeline_has_its_ten_children_in_dependency_order() {
        let g = graph(json!({"source": {"repository": "o/r"}, "build": {}}));
        assert_eq!(purposes(&g), MINIMAL.iter().copied().collect());
        assert!(deps(&g, "key").is_empty());
        assert!(deps(&g, "source").is_empty());
        for storage in ["artifacts", "build-logs", "notifications"] {
            assert_eq!(deps(&g, storage), BTreeSet::from(["key"]), "{storage}");
        }
        assert_eq!(
            deps(&g, "build-role"),
            BTreeSet::from(["key", "artifacts", "build-logs"])
        );
        assert_eq!(
            deps(&g, "build"),
            BTreeSet::from(["key", "build-role", "build-logs"])
        );
        assert_eq!(
            deps(&g, "pipeline-role"),
            BTreeSet::from(["key", "artifacts", "source", "build", "notifications"])
        );
        assert_eq!(
            deps(&g, "pipeline"),
            BTreeSet::from([
                "key",
                "artifacts",
                "source",
                "build",
                "notifications",
                "pipeline-role"
            ])
        );
        assert_eq!(
            deps(&g, "notify"),
            BTreeSet::from(["pipeline", "notifications"])
        );
        let order = registration_order(&g);
        assert_eq!(order.last().map(String::as_str), Some("notify"));
    }

    #[test]
    fn stages_in_two_regions_a_preview_and_a_schedule_each_add_their_children() {
        let g = graph(json!({
            "source": {"repository": "o/r"}, "build": {},
            "schedule": "rate(1 day)",
            "notifications": {"emails": ["ops@example.com"]},
            "deployments": [
                {"name": "staging", "region": "us-west-2", "commands": ["./deploy.sh"]},
                {"name": "prod", "production": true, "pulumiStack": {
                    "stack": "web-infra/prod", "workDir": "infra",
                    "backendUrl": "s3://state-bucket/pulumi",
                    "passphraseSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p-AbCdEf"
                }}
            ]
        }));
        let extra = [
            "key-us-west-2",
            "artifacts-us-west-2",
            "deploy-staging-logs",
            "deploy-staging-role",
            "deploy-staging",
            "deploy-prod-logs",
            "deploy-prod-role",
            "deploy-prod",
            "preview-prod-logs",
            "preview-prod-role",
            "preview-prod",
            "events-role",
            "schedule",
        ];
        assert_eq!(
            purposes(&g),
            MINIMAL.iter().chain(&extra).copied().collect()
        );
        // A stage in another region uses that region's key and bucket.
        assert_eq!(
            deps(&g, "artifacts-us-west-2"),
            BTreeSet::from(["key-us-west-2"])
        );
        assert_eq!(
            deps(&g, "deploy-staging-logs"),
            BTreeSet::from(["key-us-west-2"])
        );
        assert_eq!(
            deps(&g, "deploy-staging-role"),
            BTreeSet::from([
                "key-us-west-2",
                "artifacts-us-west-2",
                "deploy-staging-logs"
            ])
        );
        assert_eq!(
            deps(&g, "deploy-staging"),
            BTreeSet::from([
                "key-us-west-2",
                "deploy-staging-role",
                "deploy-staging-logs"
            ])
        );
        // A stage and its preview in the home region use the home store.
        for purpose in ["deploy-prod", "preview-prod"] {
            assert_eq!(
                deps(&g, &format!("{purpose}-role")),
                BTreeSet::from(["key", "artifacts", &format!("{purpose}-logs")]),
            );
        }
        // The pipeline and its role use every key, bucket and project.
        let everything = BTreeSet::from([
            "key",
            "key-us-west-2",
            "artifacts",
            "artifacts-us-west-2",
            "source",
            "build",
            "notifications",
            "deploy-staging",
            "deploy-prod",
            "preview-prod",
        ]);
        assert_eq!(deps(&g, "pipeline-role"), everything);
        let mut with_role = everything.clone();
        with_role.insert("pipeline-role");
        assert_eq!(deps(&g, "pipeline"), with_role);
        assert_eq!(deps(&g, "events-role"), BTreeSet::from(["pipeline"]));
        assert_eq!(
            deps(&g, "schedule"),
            BTreeSet::from(["pipeline", "events-role"])
        );
        let order = registration_order(&g);
        assert_eq!(order.len(), MINIMAL.len() + extra.len());
    }
}
