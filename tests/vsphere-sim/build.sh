#!/usr/bin/env bash
# Builds the vSphere simulator used by the vsphere plugin's tests, from Debian's
# golang-go and golang-github-vmware-govmomi-dev in GOPATH mode (no network).
# Output: $VSPHERE_SIM_OUT, default <repo>/target/vsphere-sim/vsphere-sim.
# Idempotent: does nothing when the binary is newer than main.go and this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${VSPHERE_SIM_OUT:-$repo/target/vsphere-sim/vsphere-sim}"
if [ -x "$out" ] && [ "$out" -nt "$here/main.go" ] && [ "$out" -nt "$here/build.sh" ]; then
    echo "vsphere-sim: up to date ($out)"
    exit 0
fi
command -v go >/dev/null || { echo "vsphere-sim: go not found (install golang-go)" >&2; exit 1; }
gopath=/usr/share/gocode
[ -d "$gopath/src/github.com/vmware/govmomi/simulator" ] ||
    { echo "vsphere-sim: govmomi sources missing (install golang-github-vmware-govmomi-dev)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
cache="$(dirname "$out")/gocache"
# GOPATH mode: main.go is copied into a scratch dir so no go.mod above it interferes.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/main.go" "$work/"
(cd "$work" && GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache" GOFLAGS= CGO_ENABLED=0 \
    go build -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "vsphere-sim: built $out"
