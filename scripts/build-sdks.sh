#!/usr/bin/env bash
# Regenerates (or, with --check, verifies) the SDKs from schema/schema.json
# with Pulumi's own code generators, then builds each one: TypeScript
# compile, Python wheel, go build and go vet.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/versions.sh
source scripts/versions.sh

export GOTOOLCHAIN=local
mode="${1:-}"
sdk_gen=".tools/bin/sdk-gen"
(cd sdk-gen && GOFLAGS=-mod=readonly go build -o "$root/$sdk_gen" .)

if [ "$mode" = "--check" ]; then
  "$sdk_gen" -version "$PROVIDER_VERSION" -out sdk --check
else
  "$sdk_gen" -version "$PROVIDER_VERSION" -out sdk
fi

echo "building sdk/nodejs"
(cd sdk/nodejs && npm install --no-audit --no-fund --loglevel=error >/dev/null && npx tsc)
cp sdk/nodejs/package.json sdk/nodejs/README.md sdk/nodejs/bin/

echo "building sdk/python"
# Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
rm -rf .tools/dist/python .tools/build/python
mkdir -p .tools/build
cp -r sdk/python .tools/build/python
.tools/venv/bin/python -m pip wheel --quiet --no-deps -w .tools/dist/python .tools/build/python

echo "building sdk/go"
# sdk/go.mod pins github.com/pulumi/pulumi/sdk/v3 at $PULUMI_VERSION.
grep -q "github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION\$" sdk/go.mod \
  || { echo "sdk/go.mod must require github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION" >&2; exit 1; }
(cd sdk && GOFLAGS=-mod=readonly go build ./... && go vet ./...)
echo "SDKs built"
