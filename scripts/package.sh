#!/usr/bin/env bash
# Release build of the plugin, packed as the tarball that
# `pulumi plugin install resource securepipeline <version> --file <tarball>`
# accepts. Prints the tarball's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/versions.sh

cargo build --release -p pulumi-resource-securepipeline >&2
mkdir -p dist
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp target/release/pulumi-resource-securepipeline "$stage/"
cp README.md "$stage/"
tarball="dist/pulumi-resource-securepipeline-v${PROVIDER_VERSION}-linux-amd64.tar.gz"
tar -czf "$tarball" -C "$stage" .
echo "$root/$tarball"
