//! Generated Pulumi protocol types (package `pulumirpc`), built from
//! `proto/pulumi/*.proto` by `build.rs`.

/// Messages, enums and gRPC stubs: the `ResourceProvider` server and the
/// `ResourceMonitor` and `Engine` clients.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::all,
    unreachable_pub
)]
pub mod pulumirpc {
    tonic::include_proto!("pulumirpc");
}

pub use pulumirpc::engine_client::EngineClient;
pub use pulumirpc::resource_monitor_client::ResourceMonitorClient;
pub use pulumirpc::resource_provider_server::{ResourceProvider, ResourceProviderServer};
