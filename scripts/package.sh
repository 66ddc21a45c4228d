#!/usr/bin/env bash
# Builds the plugin for this machine (linux-amd64) and packs it with
# pack-plugin.sh as the tarball
# `pulumi plugin install resource securepipeline <version> --file <tarball>`
# accepts, with its .sha256. Release build into dist/ by default;
# `package.sh debug` packs the debug build into target/package-debug/ (the
# test suite uses it to check the format without a second build).
# `make release` builds every platform. Prints the tarball's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

profile="${1:-release}"
case "$profile" in
  release) cargo build --release -p pulumi-resource-securepipeline >&2; out=target/release; dest=dist ;;
  debug) cargo build -p pulumi-resource-securepipeline >&2; out=target/debug; dest=target/package-debug ;;
  *) echo "usage: package.sh [release|debug]" >&2; exit 2 ;;
esac
bash scripts/pack-plugin.sh "$out/pulumi-resource-securepipeline" linux amd64 "$dest"
