//! The SecurePipeline Pulumi resource provider.
pub mod proto;
pub mod protocol;
