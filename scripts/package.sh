#!/usr/bin/env bash
# Builds the plugin and packs it as the tarball that
# `pulumi plugin install resource securepipeline <version> --file <tarball>`
# accepts. Release build by default; `package.sh debug` packs the debug
# build (the test suite uses it to check the format without a second build).
# Prints the tarball's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/versions.sh

profile="${1:-release}"
case "$profile" in
  release) cargo build --release -p pulumi-resource-securepipeline >&2; out=target/release ;;
  debug) cargo build -p pulumi-resource-securepipeline >&2; out=target/debug ;;
  *) echo "usage: package.sh [release|debug]" >&2; exit 2 ;;
esac
mkdir -p dist
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$out/pulumi-resource-securepipeline" README.md "$stage/"
suffix=""
[ "$profile" = debug ] && suffix="-debug"
tarball="dist/pulumi-resource-securepipeline-v${PROVIDER_VERSION}-linux-amd64${suffix}.tar.gz"
tar -czf "$tarball" -C "$stage" .
echo "$root/$tarball"
