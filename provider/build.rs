//! Generates the Pulumi wire types and gRPC stubs from `../proto` at build
//! time. The protos are parsed in pure Rust (protox), so no `protoc` is needed.

use std::error::Error;

const PROTOS: &[&str] = &[
    "pulumi/plugin.proto",
    "pulumi/alias.proto",
    "pulumi/engine.proto",
    "pulumi/provider.proto",
    "pulumi/resource.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=../proto");
    println!("cargo:rerun-if-changed=build.rs");

    let descriptors = protox::compile(PROTOS, ["../proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
