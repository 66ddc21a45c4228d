//! The SecurePipeline Pulumi resource provider.
pub mod aws;
pub mod buildspec;
pub mod component;
pub mod credentials;
pub mod engine_log;
pub mod iam;
pub mod naming;
pub mod proto;
pub mod protocol;
pub mod resource;
pub mod resources;
pub mod schema;
pub mod tags;
