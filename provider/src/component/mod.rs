//! `securepipeline:index:SecurePipeline`: the component users declare.
pub mod args;
pub mod buildspec;
pub mod plan;
pub mod validate;
