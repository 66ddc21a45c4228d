#!/usr/bin/env bash
# Packs one provider binary as the release tarball
# `pulumi plugin install resource securepipeline <version> --file <tarball>`
# accepts, and writes its SHA-256 beside it in `sha256sum` format:
#
#   OUT_DIR/pulumi-resource-securepipeline-v<version>-<os>-<arch>.tar.gz
#   OUT_DIR/pulumi-resource-securepipeline-v<version>-<os>-<arch>.tar.gz.sha256
#
# The tarball holds the binary (`.exe` on windows), README.md and
# CHANGELOG.md at its root. It is byte-for-byte reproducible: entries in a
# fixed order with fixed modes, owner and mtime (SOURCE_DATE_EPOCH, else the
# last commit's time) and gzip without a timestamp. Prints the tarball's path.
#
# usage: pack-plugin.sh BINARY OS ARCH OUT_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$root/scripts/versions.sh"
binary="${1:?usage: pack-plugin.sh BINARY OS ARCH OUT_DIR}"
os="${2:?usage: pack-plugin.sh BINARY OS ARCH OUT_DIR}"
arch="${3:?usage: pack-plugin.sh BINARY OS ARCH OUT_DIR}"
out_dir="${4:?usage: pack-plugin.sh BINARY OS ARCH OUT_DIR}"
[ -f "$binary" ] || { echo "pack-plugin: no binary at $binary" >&2; exit 1; }
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}"

name="pulumi-resource-securepipeline"
[ "$os" = windows ] && name="$name.exe"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$binary" "$stage/$name"
install -m 0644 "$root/README.md" "$root/CHANGELOG.md" "$stage/"

mkdir -p "$out_dir"
tarball="pulumi-resource-securepipeline-v${PROVIDER_VERSION}-${os}-${arch}.tar.gz"
# The member list is given sorted, so no directory entry (with the temporary
# directory's mode) and no filesystem order reach the archive.
members=()
while IFS= read -r member; do members+=("$member"); done < <(cd "$stage" && LC_ALL=C ls -1 | sort)
tar --format=ustar --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  -C "$stage" -cf - "${members[@]}" | gzip -9 -n > "$out_dir/$tarball"
(cd "$out_dir" && sha256sum "$tarball" > "$tarball.sha256")
echo "$(cd "$out_dir" && pwd)/$tarball"
