#!/usr/bin/env bash
# Installs what `make release` needs beyond the toolchain, project-local:
#
#   .tools/release-venv/   ziglang (Zig as the C compiler and linker for
#                          every target) and cargo-zigbuild (cargo with Zig
#                          as the linker), both from PyPI; `build` (PEP 517
#                          builds of the Python SDK's wheel and sdist)
#   rustup targets         the Rust standard library for each release target
#
# `make test` needs none of it: its checks build for linux-amd64 only.
# Idempotent. Exits non-zero with a message on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/release-venv"
targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu)
requirements=(ziglang==0.17.0 cargo-zigbuild==0.24.0 build==1.6.1)

log() { printf 'install-release-tools: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"; then
  log "ERROR: pip could not install ${requirements[*]}"
  exit 1
fi

installed="$(rustup target list --installed)"
missing=()
for target in "${targets[@]}"; do
  grep -qx "$target" <<<"$installed" || missing+=("$target")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "adding Rust targets ${missing[*]}"
  rustup target add "${missing[@]}" >&2
fi
log "ready"
