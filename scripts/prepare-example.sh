#!/usr/bin/env bash
# Copies examples/LANGUAGE into DIR and installs its dependencies the way a
# user's project gets them, with this repository's builds standing in for the
# published packages:
#
#   provider   Pulumi.yaml's plugin path points at target/debug (make build)
#   typescript @securepipeline/pulumi from sdk/nodejs/bin, `pulumi install`
#   python     `pulumi install` into the virtualenv Pulumi.yaml names, with
#              the SDK wheel from .tools/dist/python
#   go         the SDK module through go.mod's replace of ../../sdk
#
# The SDKs must be built first (bash scripts/build-sdks.sh). Used by
# `make example` and by the end-to-end tests, so both run the same project.
#
# usage: prepare-example.sh LANGUAGE DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
language="${1:?usage: prepare-example.sh yaml|typescript|python|go DIR}"
dir="${2:?usage: prepare-example.sh LANGUAGE DIR}"
source_dir="$root/examples/$language"
[ -f "$source_dir/Pulumi.yaml" ] \
  || { echo "prepare-example: no example '$language' (choose yaml, typescript, python or go)" >&2; exit 2; }

mkdir -p "$dir"
# Sources only: a developer's node_modules, venv or build output stays behind.
tar -C "$source_dir" --exclude=node_modules --exclude=venv --exclude=bin -cf - . | tar -C "$dir" -xf -
sed -i "s|path: ../../target/debug|path: $root/target/debug|" "$dir/Pulumi.yaml"

export PATH="$root/.tools/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true GOTOOLCHAIN=local
case "$language" in
  typescript)
    [ -f "$root/sdk/nodejs/bin/package.json" ] \
      || { echo "prepare-example: sdk/nodejs/bin is not built; run: bash scripts/build-sdks.sh" >&2; exit 1; }
    sed -i "s|file:../../sdk/nodejs/bin|file:$root/sdk/nodejs/bin|" "$dir/package.json"
    ;;
  python)
    shopt -s nullglob
    wheels=("$root"/.tools/dist/python/pulumi_securepipeline-*.whl)
    shopt -u nullglob
    [ "${#wheels[@]}" -eq 1 ] \
      || { echo "prepare-example: expected one SDK wheel in .tools/dist/python; run: bash scripts/build-sdks.sh" >&2; exit 1; }
    # pip finds requirements.txt's pulumi_securepipeline in the wheel's folder.
    export PIP_FIND_LINKS="$root/.tools/dist/python"
    ;;
  go)
    sed -i "s|=> ../../sdk|=> $root/sdk|" "$dir/go.mod"
    ;;
esac
if [ "$language" != yaml ]; then
  (cd "$dir" && pulumi install --non-interactive)
fi
