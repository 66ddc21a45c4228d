//! The Pulumi protocol: wire types, value codec and the gRPC layer.
pub mod graph;
pub mod in_flight;
pub mod json;
pub mod monitor;
pub mod registrar;
pub mod secrets;
pub mod server;
pub mod value;

/// The engine's gRPC message size limit (400 MiB); schemas and states of
/// large stacks travel in single messages.
pub const MAX_MESSAGE_SIZE: usize = 400 * 1024 * 1024;
