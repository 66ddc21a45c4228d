//! IAM as data: policy documents, the grants roles are assembled from, and
//! the checks every document the provider writes must pass.

pub mod grants;
pub mod lint;
pub mod policy;

pub use grants::Grant;
pub use policy::{Effect, PolicyDocument, Statement};
