#!/usr/bin/env bash
# Builds the go-libvirt interop client (main.go) from Debian's golang-go and
# golang-github-digitalocean-go-libvirt-dev in GOPATH mode (no network).
# Output: $LIBVIRT_GO_CLIENT_OUT, default <repo>/target/libvirt-go-client/libvirt-go-client.
# Idempotent: does nothing when the binary is newer than main.go and this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${LIBVIRT_GO_CLIENT_OUT:-$repo/target/libvirt-go-client/libvirt-go-client}"
if [ -x "$out" ] && [ "$out" -nt "$here/main.go" ] && [ "$out" -nt "$here/build.sh" ]; then
    echo "libvirt-go-client: up to date ($out)"
    exit 0
fi
command -v go >/dev/null || { echo "libvirt-go-client: go not found (install golang-go)" >&2; exit 1; }
gopath=/usr/share/gocode
[ -d "$gopath/src/github.com/digitalocean/go-libvirt" ] ||
    { echo "libvirt-go-client: go-libvirt sources missing (install golang-github-digitalocean-go-libvirt-dev)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
cache="$(dirname "$out")/gocache"
# GOPATH mode: main.go is copied into a scratch dir so no go.mod above it interferes.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/main.go" "$work/"
(cd "$work" && GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache" GOFLAGS= CGO_ENABLED=0 \
    go build -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "libvirt-go-client: built $out"
