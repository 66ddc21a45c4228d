//! `securepipeline:index:SecurePipeline`: the component users declare.
pub mod args;
mod brought;
mod construct;
pub mod deploy;
pub mod gates;
mod graph;
pub mod plan;
pub mod pulumi_cli;
mod triggers;
pub mod validate;
mod variables;

pub use construct::construct;
