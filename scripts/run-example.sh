#!/usr/bin/env bash
# Deploys examples/$LANGUAGE (yaml, typescript, python or go; default yaml)
# to the local AWS emulator and prints its outputs and what to do next.
# The example is prepared in .tools/example (scripts/prepare-project.sh), so
# running it leaves the repository untouched.
#
# usage: run-example.sh [LANGUAGE]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
language="${1:-yaml}"
case "$language" in
  yaml | typescript | python | go) ;;
  *) echo "run-example: unknown language '$language'; choose yaml, typescript, python or go" >&2; exit 2 ;;
esac
port=4566
work="$root/.tools/example"
rm -rf "$work" && mkdir -p "$work/state"

PYTHONPATH="$root/tests/emulator" "$root/.tools/venv/bin/python" -m securepipeline_emulator --port "$port" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "^port=" "$work/emulator.out" 2>/dev/null && break
  kill -0 "$emulator" 2>/dev/null || { cat "$work/emulator.log" >&2; echo "the emulator did not start (is port $port free?)" >&2; exit 1; }
  sleep 0.1
done
grep -q "^port=" "$work/emulator.out" || { echo "the emulator did not answer" >&2; exit 1; }

export PATH="$root/.tools/bin:$PATH"
export PULUMI_HOME="$work/home"
export PULUMI_BACKEND_URL="file://$work/state"
export PULUMI_CONFIG_PASSPHRASE="local-example"
export PULUMI_SKIP_UPDATE_CHECK=true
export GOTOOLCHAIN=local
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE

echo "preparing examples/$language in $work/project"
bash "$root/scripts/prepare-project.sh" "$root/examples/$language" "$work/project"
cd "$work/project"
pulumi stack init local --non-interactive >/dev/null
pulumi up --yes --skip-preview --non-interactive --stack local
echo
echo "Outputs:"
pulumi stack output --stack local
if [ "$(pulumi stack output connectionStatus --stack local)" = "PENDING" ]; then
  echo
  echo "The source connection is PENDING. On AWS, open $(pulumi stack output connectionActivationUrl --stack local)"
  echo "and complete the handshake with the repository host once."
fi
