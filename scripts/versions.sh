# Versions pinned project-wide; sourced by the scripts. The Pulumi SDKs the
# SDKs and examples depend on and the CLI the toolchain builds share one version.
PULUMI_VERSION=3.248.0
PROVIDER_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../Cargo.toml" | head -n 1)"
export PULUMI_VERSION PROVIDER_VERSION
