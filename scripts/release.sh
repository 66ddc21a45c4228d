#!/usr/bin/env bash
# Builds every release artifact into dist/ (or --out DIR), each with a
# `.sha256` file:
#
#   pulumi-resource-securepipeline-v<version>-<os>-<arch>.tar.gz
#       for linux-amd64, linux-arm64, darwin-amd64, darwin-arm64 and
#       windows-amd64, cross-compiled here with Zig as linker
#       (scripts/install-release-tools.sh) and packed by pack-plugin.sh
#
# The version is the workspace's (Cargo.toml [workspace.package]); the
# plugin, the schema it serves and the SDKs all take it from there.
# Builds are reproducible: paths are remapped out of the binaries and
# archive timestamps are SOURCE_DATE_EPOCH (default: the last commit's time).
#
# usage: release.sh [--platforms linux-amd64,linux-arm64,...] [--out DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/versions.sh
source scripts/versions.sh

platforms="linux-amd64,linux-arm64,darwin-amd64,darwin-arm64,windows-amd64"
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --platforms) platforms="${2:?--platforms needs a list}"; shift 2 ;;
    --out) out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    *) echo "usage: release.sh [--platforms LIST] [--out DIR]" >&2; exit 2 ;;
  esac
done
die() { printf 'release: %s\n' "$*" >&2; exit 1; }

rust_target() {
  case "$1" in
    linux-amd64) echo x86_64-unknown-linux-gnu ;;
    linux-arm64) echo aarch64-unknown-linux-gnu ;;
    darwin-amd64) echo x86_64-apple-darwin ;;
    darwin-arm64) echo aarch64-apple-darwin ;;
    windows-amd64) echo x86_64-pc-windows-gnu ;;
    *) die "unknown platform $1 (linux-amd64, linux-arm64, darwin-amd64, darwin-arm64, windows-amd64)" ;;
  esac
}

grep -q "^## \[$PROVIDER_VERSION\] - " CHANGELOG.md \
  || die "CHANGELOG.md has no section \"## [$PROVIDER_VERSION] - <date>\" for the version in Cargo.toml"

bash scripts/install-release-tools.sh
export PATH="$root/.tools/release-venv/bin:$PATH"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
export CARGO_INCREMENTAL=0
# RUSTFLAGS reach only the target's crates when --target is given, so host
# build scripts keep their cache. Remapping keeps build paths out of panic
# messages and debug info, so the bytes do not depend on where it was built.
export RUSTFLAGS="--remap-path-prefix=$root=/build --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=${RUSTUP_HOME:-$HOME/.rustup}=/rustup"

mkdir -p "$out"
IFS=, read -r -a wanted <<<"$platforms"
# The darwin plugins link Apple's Security and CoreFoundation frameworks
# (the AWS SDK's HTTPS client trusts the system keychain's roots through
# rustls-native-certs). Zig ships libSystem's stubs but not the frameworks,
# so a macOS SDK is needed; failing here saves the long build before the link.
for platform in "${wanted[@]}"; do
  if [ "${platform%%-*}" = darwin ] && [ ! -d "${SDKROOT:-}/System/Library/Frameworks/Security.framework" ]; then
    die "$platform needs a macOS SDK: set SDKROOT to a MacOSX.sdk directory (without one the link fails: unable to find system framework \"Security\"), or leave darwin out: PLATFORMS=linux-amd64,linux-arm64,windows-amd64"
  fi
done
for platform in "${wanted[@]}"; do
  target="$(rust_target "$platform")"
  echo "release: building $platform ($target)" >&2
  cargo zigbuild --release --locked --target "$target" \
    -p pulumi-resource-securepipeline --bin pulumi-resource-securepipeline >&2
  binary="target/$target/release/pulumi-resource-securepipeline"
  [ "${platform%%-*}" = windows ] && binary="$binary.exe"
  bash scripts/pack-plugin.sh "$binary" "${platform%%-*}" "${platform#*-}" "$out" >/dev/null
done

echo "release: v$PROVIDER_VERSION in $out" >&2
(cd "$out" && ls -l)
