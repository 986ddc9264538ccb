#!/usr/bin/env bash
# A throwaway Kubernetes control plane on loopback for the e2e tests: etcd, kube-apiserver and
# kube-controller-manager, started the way a real cluster starts them (its own CA, serving and
# client certificates, RBAC, the default admission plugins and OwnerReferencesPermissionEnforcement,
# a service-account issuer), with an audit log of every request made by a ServiceAccount
# (DIR/audit.log, JSON lines: the chart test compares what the controller did with what the
# chart grants).
#
#   control-plane.sh up DIR                 build (or reuse) the binaries, start, wait for /readyz;
#                                           writes DIR/kubeconfig (cluster-admin)
#   control-plane.sh down DIR               stop everything and remove DIR
#   control-plane.sh restart-apiserver DIR  stop kube-apiserver, start it again with the same
#                                           flags and port, wait for /readyz (fault tests)
#   control-plane.sh compact DIR            compact etcd at its current revision, so that a watch
#                                           resuming from an older one gets 410 Gone; prints it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command="${1:?usage: control-plane.sh up|down|restart-apiserver|compact DIR}"
dir="${2:?usage: control-plane.sh $command DIR}"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for the command in $3... to succeed; $1 names what for the error.
wait_for() {
  local what="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "control plane: $what not ready within ${seconds}s; logs in $dir/*.log:" >&2
      tail -n 20 "$dir"/*.log >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

# Starts "$@" in the background with its output in $dir/$1.log and its pid in $dir/$1.pid.
start() {
  local name="$1"
  shift
  "$@" >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

stop() {
  local pidfile="$dir/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

certificates() {
  local pki="$dir/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dpo-e2e-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    sign() { # name subject extensions
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    sign apiserver "/CN=kube-apiserver" \
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
    sign admin "/O=system:masters/CN=dpo-e2e-admin" "extendedKeyUsage=clientAuth"
    openssl genrsa -out service-account.key 2048 2>/dev/null
    openssl rsa -in service-account.key -pubout -out service-account.pub 2>/dev/null
  )
}

kubeconfig() {
  local pki="$dir/pki"
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: dpo-e2e
  cluster:
    server: https://127.0.0.1:$(cat "$dir/apiserver.port")
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: dpo-e2e
  context: {cluster: dpo-e2e, user: admin}
current-context: dpo-e2e
EOF
}

# GET $1 from kube-apiserver as the admin.
api_get() {
  local pki="$dir/pki"
  curl -sSf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$(cat "$dir/apiserver.port")$1"
}

apiserver_ready() {
  [ "$(api_get /readyz)" = "ok" ]
}

audit_policy() {
  cat >"$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
EOF
}

start_apiserver() {
  local bin pki="$dir/pki"
  bin="$(cat "$dir/bin")"
  audit_policy
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$(cat "$dir/etcd.port")" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$(cat "$dir/apiserver.port")" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=RBAC \
    --enable-admission-plugins=OwnerReferencesPermissionEnforcement \
    --audit-policy-file="$dir/audit-policy.yaml" --audit-log-path="$dir/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/service-account.pub" \
    --service-account-signing-key-file="$pki/service-account.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    --profiling=false
  wait_for "kube-apiserver /readyz" 120 apiserver_ready
}

up() {
  local bin
  bin="$("$here/build.sh")"
  mkdir -p "$dir"
  echo "$bin" >"$dir/bin"
  local started=$SECONDS
  certificates
  free_port >"$dir/etcd.port"
  free_port >"$dir/etcd-peer.port"
  free_port >"$dir/apiserver.port"
  local etcd_url="http://127.0.0.1:$(cat "$dir/etcd.port")" peer_url="http://127.0.0.1:$(cat "$dir/etcd-peer.port")"
  start etcd "$bin/etcd" --name=dpo-e2e --data-dir="$dir/etcd" \
    --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
    --listen-peer-urls="$peer_url" --initial-advertise-peer-urls="$peer_url" \
    --initial-cluster="dpo-e2e=$peer_url" --unsafe-no-fsync --log-level=warn
  wait_for "etcd /health" 60 curl -sf --max-time 5 "$etcd_url/health"
  start_apiserver
  kubeconfig
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$dir/kubeconfig" \
    --controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token,deployment,replicaset \
    --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file="$dir/pki/service-account.key" \
    --root-ca-file="$dir/pki/ca.crt" --secure-port=0
  # The service-account controller creating `default` shows kube-controller-manager at work.
  wait_for "kube-controller-manager (ServiceAccount default/default)" 120 \
    api_get /api/v1/namespaces/default/serviceaccounts/default
  echo "control plane $("$bin/kube-apiserver" --version) up in $((SECONDS - started)) s: KUBECONFIG=$dir/kubeconfig" >&2
}

restart_apiserver() {
  [ -f "$dir/kube-apiserver.pid" ] || { echo "control plane: no kube-apiserver running in $dir" >&2; exit 1; }
  local started=$SECONDS
  stop kube-apiserver
  start_apiserver
  echo "kube-apiserver restarted in $((SECONDS - started)) s" >&2
}

# Through etcd's v3 JSON gateway: the current revision is in the header of any range answer.
compact() {
  local etcd revision
  etcd="http://127.0.0.1:$(cat "$dir/etcd.port")"
  etcd_post() { curl -sS --max-time 30 -X POST "$etcd/v3/kv/$1" -d "$2"; }
  revision="$(etcd_post range '{"key": "AA=="}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["header"]["revision"])')"
  etcd_post compaction "{\"revision\": \"$revision\", \"physical\": true}" >/dev/null
  # Proof that it took: a read below the compacted revision is refused.
  if ! etcd_post range "{\"key\": \"AA==\", \"revision\": \"$((revision - 1))\"}" | grep -q compacted; then
    echo "control plane: etcd still serves revision $((revision - 1)) after compaction at $revision" >&2
    exit 1
  fi
  echo "$revision"
}

down() {
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  rm -rf "$dir"
}

case "$command" in
  up) up ;;
  down) down ;;
  restart-apiserver) restart_apiserver ;;
  compact) compact ;;
  *) echo "control-plane.sh: unknown command $command" >&2; exit 2 ;;
esac
