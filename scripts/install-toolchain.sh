#!/usr/bin/env bash
# Installs the tools this project builds and tests with into .tools/ at the
# repository root (git-ignored), so nothing depends on what a machine happens
# to have lying around:
#
#   .tools/bin/pulumi                 Pulumi CLI, built from Go modules
#   .tools/bin/pulumi-language-yaml   YAML language host, built from Go modules
#   .tools/bin/pulumi-language-nodejs Node.js language host (TypeScript programs)
#   .tools/bin/pulumi-language-python Python language host, with
#   .tools/bin/pulumi-language-python-exec  the script it runs programs with
#   .tools/bin/pulumi-language-go     Go language host
#   .tools/venv/                      Python venv for the AWS emulator and tests
#   .tools/checkov-venv/              Checkov, the IaC scanner the compliance test runs
#                                     (a venv of its own: its pins conflict with moto's)
#
# Idempotent: a second run checks what is in place and returns in seconds.
# Works from any directory. Exits non-zero with a message on any failure.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
REQUIREMENTS="$ROOT/tests/emulator/requirements.txt"
CHECKOV_VENV="$TOOLS/checkov-venv"
CHECKOV_REQUIREMENTS="$ROOT/tests/compliance/requirements.txt"

# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
PULUMI_VERSION="v$PULUMI_VERSION"
YAML_VERSION="v1.38.0"  # not v1.37.0: see "Go tools" below

log() { printf 'install-toolchain: %s\n' "$*"; }
die() { printf 'install-toolchain: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

require_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH; $2"
}

sha256_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- Go tools --
#
# Each binary is built from its own wrapper module under tools/, whose go.mod
# and go.sum pin that binary's whole dependency graph. They cannot share one
# module: pulumi-yaml is written against a different pkg/v3 release than the
# CLI, and Go's minimal version selection would force both onto one version.
# pulumi-yaml v1.37.0 (the host released with CLI v3.248.0) needs pkg/v3
# v3.247.0, which the Go module proxy reachable here refuses (403), so the
# nearest available host, v1.38.0, is built against the pkg/v3 it declares.

check_go() {
    require_cmd go "install Go (see tools/pulumi/go.mod for the minimum version)"
    local need have
    need="$(awk '$1 == "go" { print $2; exit }' "$ROOT/tools/pulumi/go.mod")"
    have="$(GOTOOLCHAIN=local go env GOVERSION)"
    have="${have#go}"
    # GOTOOLCHAIN=local forbids Go from downloading a newer toolchain (no
    # internet here), so the local one must already be new enough.
    if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]]; then
        die "Go $have is older than $need required by tools/pulumi/go.mod"
    fi
}

# The stamp ties a binary to the exact inputs it was built from: its version,
# linker flags and its wrapper module's pinned dependency graph.
go_stamp() {
    local module_dir="$1" ldflags="$2"
    printf '%s %s\n' "$ldflags" "$(sha256_of "$module_dir/go.mod" "$module_dir/go.sum")"
}

# `go version -m` reads the build info embedded in a binary without running
# it; the YAML host has no version flag, so this is how its version is checked.
binary_has_ldflag() {
    local binary="$1" flag="$2"
    GOTOOLCHAIN=local go version -m "$binary" 2>/dev/null | grep -q -- "-X $flag"
}

# binary_current NAME MODULE_DIR LDFLAGS VERSION_FLAG
binary_current() {
    local name="$1" module_dir="$2" ldflags="$3" version_flag="$4"
    local stamp="$BIN/.$name.stamp"
    [[ -x "$BIN/$name" && -f "$stamp" ]] || return 1
    [[ "$(cat "$stamp")" == "$(go_stamp "$module_dir" "$ldflags")" ]] || return 1
    binary_has_ldflag "$BIN/$name" "$version_flag"
}

# build_binary NAME MODULE_DIR PACKAGE LDFLAGS [GOPROXY]
build_binary() {
    local name="$1" module_dir="$2" package="$3" ldflags="$4"
    local goproxy="${5:-$(GOTOOLCHAIN=local go env GOPROXY)}"
    local staging="$TOOLS/.build-$name"
    rm -rf "$staging"
    mkdir -p "$staging" "$BIN"
    # -mod=readonly: the committed go.sum is complete, so every downloaded
    # module is verified against it locally (no checksum-database lookup,
    # which fails here for pkg/v3) and go.mod is never rewritten.
    # CGO_ENABLED=0 matches Pulumi's release builds.
    (
        cd "$module_dir"
        GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
            GOPROXY="$goproxy" go build -o "$staging/$name" -ldflags "$ldflags" "$package"
    ) || die "go build of $name failed (see output above)"
    mv -f "$staging/$name" "$BIN/$name"
    rmdir "$staging"
    go_stamp "$module_dir" "$ldflags" > "$BIN/.$name.stamp"
}

# install_binary NAME VERSION MODULE_DIR PACKAGE VERSION_VARIABLE [GOPROXY]
install_binary() {
    local name="$1" version="$2" module_dir="$3" package="$4" variable="$5"
    local goproxy="${6:-}"
    # -s -w and the version variable are what Pulumi's release builds use.
    local version_flag="$variable=$version"
    local ldflags="-s -w -X $version_flag"
    if binary_current "$name" "$module_dir" "$ldflags" "$version_flag"; then
        log "$name $version already installed"
        return
    fi
    log "building $name $version (a cold build takes a few minutes)"
    build_binary "$name" "$module_dir" "$package" "$ldflags" ${goproxy:+"$goproxy"}
    binary_current "$name" "$module_dir" "$ldflags" "$version_flag" \
        || die "$name was built but does not carry version $version"
}

install_go_tools() {
    check_go
    install_binary pulumi "$PULUMI_VERSION" "$ROOT/tools/pulumi" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
        github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
    install_binary pulumi-language-yaml "$YAML_VERSION" "$ROOT/tools/pulumi-yaml" \
        github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
        github.com/pulumi/pulumi-yaml/pkg/version.Version
    local reported
    reported="$(PULUMI_SKIP_UPDATE_CHECK=true "$BIN/pulumi" version)" \
        || die "$BIN/pulumi does not run"
    [[ "$reported" == "$PULUMI_VERSION" ]] \
        || die "pulumi version reports '$reported', expected $PULUMI_VERSION"
}

# ---------------------------------------------------------- language hosts --
#
# The Node.js, Python and Go hosts live in modules of Pulumi's repository that
# some Go module proxies refuse (403). A file-layout proxy holding exactly
# those modules may sit beside the checkout at ../shared/goproxy (or wherever
# SECUREPIPELINE_HOSTS_GOPROXY points); when it exists it is placed in front of
# the normal proxy for these three builds only. Every module is still verified
# against the committed go.sum.

LANGUAGE_HOSTS=(
    "pulumi-language-nodejs github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
    "pulumi-language-python github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"
    "pulumi-language-go github.com/pulumi/pulumi/sdk/go/pulumi-language-go/v3"
)

hosts_goproxy() {
    local dir="${SECUREPIPELINE_HOSTS_GOPROXY:-$ROOT/../shared/goproxy}"
    local normal
    normal="$(GOTOOLCHAIN=local go env GOPROXY)"
    if [[ -d "$dir" ]]; then
        printf 'file://%s,%s\n' "$(cd "$dir" && pwd)" "$normal"
    else
        printf '%s\n' "$normal"
    fi
}

# Fails early, naming both ways out, when no proxy serves a host's module.
require_host_module() {
    local name="$1" module="$2" goproxy="$3"
    (
        cd "$ROOT/tools/$name"
        GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOPROXY="$goproxy" \
            go mod download "$module" 2>&1
    ) >"$TOOLS/.download-$name.log" && return
    cat "$TOOLS/.download-$name.log" >&2
    die "cannot download $module (GOPROXY=$goproxy). Either put the file-layout proxy holding Pulumi's language hosts at $ROOT/../shared/goproxy (or set SECUREPIPELINE_HOSTS_GOPROXY to its directory), or use a Go module proxy that serves this module (GOPROXY)"
}

install_language_hosts() {
    local goproxy entry name module
    goproxy="$(hosts_goproxy)"
    for entry in "${LANGUAGE_HOSTS[@]}"; do
        read -r name module <<<"$entry"
        # Answers from the module cache once the module has been downloaded.
        require_host_module "$name" "$module" "$goproxy"
        install_binary "$name" "$PULUMI_VERSION" "$ROOT/tools/$name" "$module" \
            github.com/pulumi/pulumi/sdk/v3/go/common/version.Version "$goproxy"
    done
    install_python_exec
}

# The Python host runs programs through this script, looked up beside itself;
# it ships in the sdk/v3 module the host is built against.
install_python_exec() {
    local sdk_dir
    sdk_dir="$(cd "$ROOT/tools/pulumi-language-python" &&
        GOTOOLCHAIN=local GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)" \
        || die "cannot locate github.com/pulumi/pulumi/sdk/v3 in the module cache"
    local script="$sdk_dir/python/cmd/pulumi-language-python-exec"
    [[ -f "$script" ]] || die "$script is missing from the sdk/v3 module"
    cmp -s "$script" "$BIN/pulumi-language-python-exec" 2>/dev/null \
        || install -m 0755 "$script" "$BIN/pulumi-language-python-exec"
}

# -------------------------------------------------------------- Python venv --

venv_current() {
    local stamp="$VENV/.requirements.sha256"
    [[ -f "$stamp" && -x "$VENV/bin/python" ]] || return 1
    [[ "$(cat "$stamp")" == "$(sha256_of "$REQUIREMENTS")" ]] || return 1
    # A venv outlives the interpreter it was made from; make sure it still runs.
    "$VENV/bin/python" -c 'import moto, boto3, parliament, pytest, yaml' 2>/dev/null
}

install_venv() {
    require_cmd python3 "install CPython 3.10 or newer"
    if venv_current; then
        log "python venv already satisfies tests/emulator/requirements.txt"
        link_emulator  # cheap, and follows the checkout if it moved
        return
    fi
    log "creating python venv in .tools/venv"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian needs the python3-venv package)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
        || die "pip install -r tests/emulator/requirements.txt failed"
    link_emulator
    sha256_of "$REQUIREMENTS" > "$VENV/.requirements.sha256"
}

# Put tests/emulator on the venv's import path, so that
# `.tools/venv/bin/python -m securepipeline_emulator` works from any directory.
link_emulator() {
    local site
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$ROOT/tests/emulator" > "$site/securepipeline-emulator.pth"
}

# ---------------------------------------------------------------- Checkov --

install_checkov() {
    local stamp="$CHECKOV_VENV/.requirements.sha256"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$(sha256_of "$CHECKOV_REQUIREMENTS")" ]] \
        && "$CHECKOV_VENV/bin/checkov" --version >/dev/null 2>&1; then
        log "checkov venv already satisfies tests/compliance/requirements.txt"
        return
    fi
    log "creating checkov venv in .tools/checkov-venv"
    rm -rf "$CHECKOV_VENV"
    python3 -m venv "$CHECKOV_VENV" || die "python3 -m venv failed for checkov"
    "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$CHECKOV_REQUIREMENTS" || die "pip install -r tests/compliance/requirements.txt failed"
    sha256_of "$CHECKOV_REQUIREMENTS" > "$stamp"
}

# ------------------------------------------------------------------ summary --

print_summary() {
    log "installed in $TOOLS:"
    printf '  %-22s %s\n' "pulumi" "$(PULUMI_SKIP_UPDATE_CHECK=true "$BIN/pulumi" version)"
    printf '  %-22s %s\n' "pulumi-language-yaml" "$YAML_VERSION"
    local entry name
    for entry in "${LANGUAGE_HOSTS[@]}"; do
        read -r name _ <<<"$entry"
        printf '  %-22s %s\n' "$name" "$PULUMI_VERSION"
    done
    "$VENV/bin/python" - <<'PY'
import sys
from importlib.metadata import version

print(f"  {'python (venv)':<22} {sys.version.split()[0]}")
for name in ("moto", "boto3", "parliament", "pytest", "PyYAML"):
    print(f"  {name:<22} {version(name)}")
PY
    printf '  %-22s %s\n' "checkov" "$("$CHECKOV_VENV/bin/checkov" --version)"
}

main() {
    mkdir -p "$TOOLS"
    install_go_tools
    install_language_hosts
    install_venv
    install_checkov
    print_summary
}

main "$@"
