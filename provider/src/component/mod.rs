//! `securepipeline:index:SecurePipeline`: the component users declare.
pub mod args;
pub mod buildspec;
mod construct;
pub mod deploy;
pub mod plan;
pub mod pulumi_cli;
pub mod validate;

pub use construct::construct;
