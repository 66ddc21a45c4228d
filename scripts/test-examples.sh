#!/usr/bin/env bash
# Builds the TypeScript, Python and Go examples against the SDKs in sdk/, the
# way a user's project installs them, and runs their unit tests (Pulumi's
# mocks: no engine, no plugin, no AWS).
#
#   examples/typescript  npm install (the SDK from sdk/nodejs/bin), tsc, node --test
#   examples/python      a venv in .tools/examples-venv with the SDK wheel, pytest
#   examples/go          go vet and go test (the SDK module through a replace)
#
# Needs the SDKs built first: bash scripts/build-sdks.sh
# Idempotent. Every example runs even when an earlier one fails; exits
# non-zero if any of them failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/versions.sh
source scripts/versions.sh

export GOTOOLCHAIN=local
export PULUMI_SKIP_UPDATE_CHECK=true
PYTEST_VERSION=8.4.2
venv="$root/.tools/examples-venv"

die() { printf 'test-examples: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------ preconditions --

[ -f sdk/nodejs/bin/index.js ] && [ -f sdk/nodejs/bin/package.json ] \
  || die "sdk/nodejs/bin is not built; run: bash scripts/build-sdks.sh"
shopt -s nullglob
wheels=(.tools/dist/python/pulumi_securepipeline-*.whl)
shopt -u nullglob
[ "${#wheels[@]}" -eq 1 ] \
  || die "expected one SDK wheel in .tools/dist/python, found ${#wheels[@]}; run: bash scripts/build-sdks.sh"
wheel="$root/${wheels[0]}"
for tool in node npm go python3; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH"
done

# Every example pins the Pulumi SDK the project is built against.
grep -q "\"@pulumi/pulumi\": \"$PULUMI_VERSION\"" examples/typescript/package.json \
  || die "examples/typescript/package.json does not pin @pulumi/pulumi $PULUMI_VERSION"
grep -qx "pulumi==$PULUMI_VERSION" examples/python/requirements.txt \
  || die "examples/python/requirements.txt does not pin pulumi==$PULUMI_VERSION"
grep -q "github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION\$" examples/go/go.mod \
  || die "examples/go/go.mod does not require github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION"

# ------------------------------------------------------------------ examples --

typescript_example() {
  cd "$root/examples/typescript"
  # The SDK is installed as a copy (see .npmrc); drop the old copy so a
  # rebuilt SDK is picked up.
  rm -rf node_modules/@securepipeline bin
  npm install --no-audit --no-fund --loglevel=error
  npx tsc
  node --test --test-reporter=spec bin/pipeline.test.js
}

python_venv_current() {
  [ -x "$venv/bin/python" ] || return 1
  [ "$(cat "$venv/.pins" 2>/dev/null)" = "$(cat "$root/examples/python/requirements.txt") pytest==$PYTEST_VERSION" ] || return 1
  "$venv/bin/python" -c 'import pulumi, pytest' 2>/dev/null
}

python_example() {
  cd "$root/examples/python"
  if ! python_venv_current; then
    echo "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # The wheel on the same command line satisfies requirements.txt's
    # pulumi_securepipeline, and brings its dependencies.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r requirements.txt "pytest==$PYTEST_VERSION" "$wheel"
    printf '%s pytest==%s' "$(cat requirements.txt)" "$PYTEST_VERSION" > "$venv/.pins"
  fi
  # The SDK wheel keeps its version across rebuilds: always reinstall it.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --force-reinstall "$wheel"
  "$venv/bin/python" -m pytest -p no:cacheprovider test_pipeline.py
}

go_example() {
  cd "$root/examples/go"
  if ! go vet ./...; then
    echo "(if go.mod or go.sum is out of date after an SDK change: cd examples/go && go mod tidy)" >&2
    return 1
  fi
  go test -count=1 -v ./...
}

failed=()
run() {
  local name="$1" fn="$2" start status
  start=$SECONDS
  printf '\n==> %s\n' "examples/$name"
  (set -e; "$fn")
  status=$?
  if [ "$status" -eq 0 ]; then
    printf '==> examples/%s: ok (%ss)\n' "$name" "$((SECONDS - start))"
  else
    printf '==> examples/%s: FAILED (exit %s, %ss)\n' "$name" "$status" "$((SECONDS - start))"
    failed+=("$name")
  fi
}

run typescript typescript_example
run python python_example
run go go_example

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "example tests FAILED: ${failed[*]}"
  exit 1
fi
echo "example tests passed: typescript python go"
