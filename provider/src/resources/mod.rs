//! The provider's custom resource kinds, one file each. SecurePipeline is
//! built from them; each kind's `check` enforces its own invariants, since
//! a program may register a child directly or rewrite its inputs.

pub mod artifact_bucket;
pub mod build_project;
pub mod common;
pub mod connection;
pub mod event_rule;
pub mod key;
pub mod log_group;
pub mod pipeline;
pub mod role;
pub mod topic;

use std::collections::HashMap;

use crate::resource::{CustomResource, ResourceHandler, Typed};

fn entry<R: CustomResource>() -> (&'static str, Box<dyn ResourceHandler>) {
    (R::TYPE, Box::new(Typed::<R>::default()))
}

/// Every kind, by type token.
pub fn registry() -> HashMap<&'static str, Box<dyn ResourceHandler>> {
    HashMap::from([
        entry::<log_group::LogGroup>(),
        entry::<key::Key>(),
        entry::<artifact_bucket::ArtifactBucket>(),
        entry::<build_project::BuildProject>(),
        entry::<pipeline::Pipeline>(),
        entry::<event_rule::EventRule>(),
        entry::<topic::Topic>(),
        entry::<role::Role>(),
        entry::<connection::Connection>(),
    ])
}
