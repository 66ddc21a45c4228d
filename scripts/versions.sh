# Versions pinned project-wide; sourced by the scripts.
PULUMI_VERSION=3.248.0
PULUMI_YAML_VERSION=1.37.0
PROVIDER_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../Cargo.toml" | head -n 1)"
export PULUMI_VERSION PULUMI_YAML_VERSION PROVIDER_VERSION
