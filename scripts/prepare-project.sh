#!/usr/bin/env bash
# Copies a Pulumi project (an example under examples/, or a test program) into
# DIR and installs its dependencies the way a user's project gets them, with
# this repository's builds standing in for the published packages:
#
#   provider    Pulumi.yaml's plugin path points at the provider cargo built
#               ($PROVIDER_DIR, default target/debug: make build)
#   TypeScript  @securepipeline/pulumi from sdk/nodejs/bin, `pulumi install`
#   Python      `pulumi install` into the virtualenv Pulumi.yaml names; pip
#               finds pulumi_securepipeline in .tools/dist/python
#   Go          the SDK module through go.mod's replace of the sdk/ folder
#   YAML        nothing to install
#
# The SDKs must be built first (bash scripts/build-sdks.sh). `make example`
# and the end-to-end tests both prepare projects with this script.
#
# usage: prepare-project.sh SOURCE_DIR DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source_dir="${1:?usage: prepare-project.sh SOURCE_DIR DIR}"
dir="${2:?usage: prepare-project.sh SOURCE_DIR DIR}"
provider_dir="${PROVIDER_DIR:-$root/target/debug}"
die() { printf 'prepare-project: %s\n' "$*" >&2; exit 1; }
[ -f "$source_dir/Pulumi.yaml" ] || die "$source_dir has no Pulumi.yaml"

mkdir -p "$dir"
# Sources only: a developer's node_modules, venv or build output stays behind.
tar -C "$source_dir" --exclude=./node_modules --exclude=./venv --exclude=./bin -cf - . | tar -C "$dir" -xf -
sed -i "s|path: [^ ]*target/debug\$|path: $provider_dir|" "$dir/Pulumi.yaml"

export PATH="$root/.tools/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true GOTOOLCHAIN=local
if [ -f "$dir/package.json" ]; then
  [ -f "$root/sdk/nodejs/bin/package.json" ] || die "sdk/nodejs/bin is not built; run: bash scripts/build-sdks.sh"
  sed -i "s|\"file:[^\"]*sdk/nodejs/bin\"|\"file:$root/sdk/nodejs/bin\"|" "$dir/package.json"
elif [ -f "$dir/requirements.txt" ]; then
  shopt -s nullglob
  wheels=("$root"/.tools/dist/python/pulumi_securepipeline-*.whl)
  shopt -u nullglob
  [ "${#wheels[@]}" -eq 1 ] || die "expected one SDK wheel in .tools/dist/python; run: bash scripts/build-sdks.sh"
  export PIP_FIND_LINKS="$root/.tools/dist/python"
elif [ -f "$dir/go.mod" ]; then
  sed -i "s|=> [^ ]*/sdk\$|=> $root/sdk|" "$dir/go.mod"
else
  exit 0  # YAML
fi
cd "$dir"
# --no-plugins: the provider is the local build Pulumi.yaml points at; a
# released plugin would be fetched from the SDK's pluginDownloadURL instead.
pulumi install --non-interactive --no-plugins
