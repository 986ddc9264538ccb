#!/usr/bin/env bash
# Builds the test tools from their Go modules into a cache keyed by version, so that only the
# first run pays for the build: kube-apiserver and kube-controller-manager (k8s.io/kubernetes),
# etcd (go.etcd.io/etcd/server/v3) and the kstatus helper (sigs.k8s.io/cli-utils).
# Prints the directory holding the binaries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="${DPO_TOOLS_DIR:-$HOME/.cache/dpo-tools}"

version_of() { # module go.mod → the version it requires
  awk -v m="$1" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$2"
}
kubernetes="$(version_of k8s.io/kubernetes "$here/controlplane/go.mod")"
etcd="$(version_of go.etcd.io/etcd/server/v3 "$here/etcd/go.mod")"
cli_utils="$(version_of sigs.k8s.io/cli-utils "$here/kstatus/go.mod")"
# The versions name the cache; a digest of these sources tells builds of changed sources apart.
sources="$(cd "$here" && cat build.sh */go.mod */go.sum */*.go | sha256sum | cut -c1-12)"
bin="$tools/kubernetes-$kubernetes-etcd-$etcd-cli-utils-$cli_utils-$sources"

if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/etcd" ] && [ -x "$bin/kstatus" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 || {
  echo "Go is not installed: the e2e tests need Go 1.26 to build the test control plane (https://go.dev/doc/install), or a cluster in KUBECONFIG" >&2
  exit 3
}
mkdir -p "$bin.partial"
started=$SECONDS
export CGO_ENABLED=0 GOFLAGS=-mod=mod

minor="${kubernetes#v1.}"; minor="${minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$kubernetes -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
echo "building kube-apiserver and kube-controller-manager $kubernetes (the first build takes 10 to 20 minutes on 2 cores)" >&2
(cd "$here/controlplane" && go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "-s -w$stamp" \
  -o "$bin.partial/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
echo "building etcd $etcd" >&2
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin.partial/etcd" go.etcd.io/etcd/server/v3)
echo "building kstatus (sigs.k8s.io/cli-utils $cli_utils)" >&2
(cd "$here/kstatus" && go build -trimpath -ldflags "-s -w" -o "$bin.partial/kstatus" .)
rm -rf "$bin" && mv "$bin.partial" "$bin"
echo "built the test tools in $((SECONDS - started)) s" >&2
echo "$bin"
