# Everything a newcomer or CI runs goes through these targets.
SHELL := /bin/bash
export GOTOOLCHAIN := local

.PHONY: toolchain build schema sdks check-sdks lint test example run-pipeline package release bench bench-scale

# The Pulumi CLI, its language hosts and the AWS emulator, project-local.
toolchain:
	bash scripts/install-toolchain.sh

build:
	cargo build --workspace

# Regenerates schema/schema.json from the Rust types.
schema:
	cargo run -q -p pulumi-resource-securepipeline --bin gen-schema > schema/schema.json

# Regenerates and builds the SDKs from the schema.
sdks: toolchain
	bash scripts/build-sdks.sh

check-sdks: toolchain
	bash scripts/build-sdks.sh --check

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Unit, emulator and end-to-end tests, formatting, lints, SDK freshness,
# and the examples' own mock-based unit tests.
test: toolchain lint build check-sdks
	.tools/venv/bin/python -m pytest -q tests/emulator
	cargo test --workspace
	bash scripts/test-examples.sh

# Deploys an example stack to a local emulator and prints its outputs:
# make example [LANGUAGE=yaml|typescript|python|go]
LANGUAGE ?= yaml
example: toolchain build check-sdks
	bash scripts/run-example.sh $(LANGUAGE)

# Runs a pipeline once on the emulator with IAM enforced, printing each
# action's progress as it goes and where its log is (README, "Watch a
# pipeline run").
run-pipeline: toolchain build
	cargo run -q --bin run-pipeline

# The release tarball `pulumi plugin install --file` accepts.
package:
	bash scripts/package.sh

# Every release artifact into dist/, each with a .sha256: the plugin for
# linux, darwin (amd64, arm64) and windows (amd64), then checks them (README,
# "Releases"). Installs its own cross-compiling tools
# (scripts/install-release-tools.sh); `make test` does not need them.
# PLATFORMS=linux-amd64,linux-arm64 builds a subset; darwin needs SDKROOT.
PLATFORMS ?= linux-amd64,linux-arm64,darwin-amd64,darwin-arm64,windows-amd64
release: toolchain build
	bash scripts/release.sh --platforms $(PLATFORMS)
	SECUREPIPELINE_RELEASE_DIR=$(CURDIR)/dist SECUREPIPELINE_RELEASE_PLATFORMS=$(PLATFORMS) \
	  cargo test -p securepipeline-e2e --test release -- --ignored release_artifacts

bench:
	cargo run --release -p pulumi-resource-securepipeline --bin bench

# preview, up, a no-op up, refresh and destroy of stacks of 1, 10, 50 and 100
# pipelines against the emulator at AWS's pace (its latency model), with the
# critical path of one pipeline's up: docs/performance.md.
# make bench-scale [PIPELINES=1,10] [LATENCY=seed=1]
PIPELINES ?= 1,10,50,100
LATENCY ?= seed=1
bench-scale: toolchain
	cargo build --release -p pulumi-resource-securepipeline
	.tools/venv/bin/python scripts/bench-scale.py --pipelines $(PIPELINES) --latency '$(LATENCY)' --out target/bench/scale.md
