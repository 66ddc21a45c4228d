//! The Pulumi provider protocol: wire types, value codec and the gRPC layer.
pub mod value;
