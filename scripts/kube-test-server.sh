#!/usr/bin/env bash
# A real kube-apiserver (with etcd) on loopback for the real-Kubernetes suite (issue #17,
# test/integration/k8s-real-api.test.ts, docs/testing-kubernetes.md).
#
#   scripts/kube-test-server.sh fetch    build kube-apiserver once (cached by version) and install etcd
#   scripts/kube-test-server.sh start    fetch, start etcd and the API server, wait until ready, print the URL
#   scripts/kube-test-server.sh stop     stop what `start` started
#   scripts/kube-test-server.sh env      print `export` lines for the tests (URL, CA file, admin token, ...)
#   scripts/kube-test-server.sh status   exit 0 when the API server answers
#
# kube-apiserver is built from scripts/kube-apiserver/, a module of our own that requires
# k8s.io/kubernetes and pins every k8s.io staging module (the only kube-apiserver this network reaches is
# the Go module proxy). GOMODCACHE and GOCACHE stay Go's defaults so a CI cache of them makes a rebuild
# take seconds; the binary itself is cached under ~/.cache/logferry-kube/<version>/ and reused as it is.
# etcd is Debian's etcd-server (3.4.23: below the 3.4.29 that 1.34 documents; it logs that
# RequestWatchProgress is unsupported and falls back, which the suite does not depend on).
set -euo pipefail

KUBE_VERSION="${LOGFERRY_KUBE_VERSION:-v1.34.4}"
CACHE_DIR="${LOGFERRY_KUBE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logferry-kube}"
STATE_DIR="${LOGFERRY_KUBE_STATE_DIR:-${TMPDIR:-/tmp}/logferry-kube-$(id -u)}"
API_PORTS="${LOGFERRY_KUBE_PORTS:-6440-6460}"
# etcd gets loopback ports of its own, outside the API range and away from etcd's usual 2379/2380 (a
# developer's own etcd must not be touched).
ETCD_PORTS="${LOGFERRY_KUBE_ETCD_PORTS:-16440-16470}"
START_TIMEOUT_S="${LOGFERRY_KUBE_START_TIMEOUT_S:-120}"

SRC_DIR="$(cd "$(dirname "$0")" && pwd)/kube-apiserver"
BIN_DIR="$CACHE_DIR/$KUBE_VERSION"
APISERVER="$BIN_DIR/kube-apiserver"
ENV_FILE="$STATE_DIR/env"

LOG_NAME=kube-test-server
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


build_apiserver() {
  if [ -x "$APISERVER" ]; then
    return
  fi
  command -v go >/dev/null || die 'go not found: it is needed once to build kube-apiserver (https://go.dev/dl/)'
  mkdir -p "$BIN_DIR"
  local version="${KUBE_VERSION#v}"
  local major="${version%%.*}" minor
  minor="${version#*.}"
  minor="${minor%%.*}"
  log "building kube-apiserver $KUBE_VERSION from the Go module proxy (about 10 min and 1.8 GB the first time; log: $BIN_DIR/build.log)"
  local started_at=$SECONDS
  # -buildvcs=false: the module sits inside this repository, whose VCS state must not change the binary.
  # The -X flags give /version the real version (kubectl and clients print it); they only change the link step.
  (
    cd "$SRC_DIR"
    CGO_ENABLED=0 go build -buildvcs=false -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
      -o "$APISERVER.partial" .
  ) >"$BIN_DIR/build.log" 2>&1 || {
    tail -n 40 "$BIN_DIR/build.log" >&2 || true
    rm -f "$APISERVER.partial"
    die "go build of kube-apiserver $KUBE_VERSION failed (log: $BIN_DIR/build.log)"
  }
  # Renamed into place so an interrupted build never looks like a finished one.
  mv "$APISERVER.partial" "$APISERVER"
  log "built $APISERVER in $((SECONDS - started_at)) s"
}

install_etcd() {
  if command -v etcd >/dev/null; then
    return
  fi
  is_root || die 'etcd not found: install it (Debian: apt-get install etcd-server) or run as root once'
  log 'installing etcd-server with apt-get'
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
  command -v etcd >/dev/null || die 'apt-get installed etcd-server but there is no etcd on PATH'
}

cmd_fetch() {
  mkdir -p "$CACHE_DIR"
  # A background fetch (CI) and a start must not build twice at once.
  exec 8>"$CACHE_DIR/.fetch.lock"
  flock -w 1800 8 || die "another fetch holds $CACHE_DIR/.fetch.lock"
  install_etcd
  build_apiserver
  flock -u 8
}

# A port in the range that nothing listens on (nothing answers a connect).
free_port() {
  local lo="${1%-*}" hi="${1#*-}" skip="${2:-}" port
  for ((port = lo; port <= hi; port++)); do
    [ "$port" = "$skip" ] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return
    fi
  done
  die "no free port in $1 on 127.0.0.1"
}

pid_alive() {
  local file="$1" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

make_certs() {
  local dir="$STATE_DIR/pki"
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3 -subj '/CN=logferry-test-kube-ca' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
      -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -sha256 -subj '/CN=kube-apiserver' -keyout apiserver.key -out apiserver.csr
    printf '%s\n' \
      'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=serverAuth' \
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local' \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3 \
      -extfile apiserver.ext -out apiserver.crt
    # Service-account tokens are signed with this key and verified with its public half.
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$STATE_DIR/openssl.log" 2>&1 || {
    cat "$STATE_DIR/openssl.log" >&2
    die 'openssl could not make the certificates'
  }
}

wait_for() {
  local what="$1" pid_file="$2" log_file="$3"
  shift 3
  local started_at=$SECONDS
  while [ $((SECONDS - started_at)) -lt "$START_TIMEOUT_S" ]; do
    if "$@" >/dev/null 2>&1; then
      return
    fi
    if ! pid_alive "$pid_file"; then
      log "$what exited during start; log tail:"
      tail -n 40 "$log_file" >&2 || true
      cmd_stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.5
  done
  log "$what did not become ready within $START_TIMEOUT_S s; log tail:"
  tail -n 40 "$log_file" >&2 || true
  cmd_stop >/dev/null 2>&1 || true
  exit 1
}

cmd_start() {
  if cmd_status >/dev/null 2>&1; then
    sed -n 's/^export LOGFERRY_TEST_KUBE_URL=//p' "$ENV_FILE"
    return
  fi
  cmd_stop >/dev/null 2>&1 || true
  cmd_fetch
  rm -rf "$STATE_DIR/etcd" "$STATE_DIR/pki" "$ENV_FILE"
  mkdir -p "$STATE_DIR"
  make_certs

  local etcd_port etcd_peer_port api_port admin_token started_at=$SECONDS
  etcd_port="$(free_port "$ETCD_PORTS")"
  etcd_peer_port="$(free_port "$ETCD_PORTS" "$etcd_port")"
  api_port="$(free_port "$API_PORTS")"
  admin_token="$(openssl rand -hex 24)"
  printf '%s,logferry-test-admin,logferry-test-admin,system:masters\n' "$admin_token" >"$STATE_DIR/tokens.csv"
  chmod 600 "$STATE_DIR/tokens.csv"
  printf '%s\n' "$admin_token" >"$STATE_DIR/admin.token"

  local etcd_url="http://127.0.0.1:$etcd_port"
  log "starting etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p') on $etcd_url"
  setsid etcd --name logferry-test --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "logferry-test=http://127.0.0.1:$etcd_peer_port" \
    --listen-metrics-urls '' \
    </dev/null >"$STATE_DIR/etcd.log" 2>&1 8>&- 9>&- &
  echo $! >"$STATE_DIR/etcd.pid"
  wait_for etcd "$STATE_DIR/etcd.pid" "$STATE_DIR/etcd.log" curl -sf --max-time 2 "$etcd_url/health"

  local url="https://127.0.0.1:$api_port"
  log "starting kube-apiserver $KUBE_VERSION on $url"
  # --watch-cache-sizes=pods#0: pod watches go to etcd itself, so a watch resumed from a compacted
  # resourceVersion is answered 410 Gone as in a busy cluster (the watch cache would keep serving from its
  # own window). --etcd-compaction-interval=0: only the suite compacts, when it means to.
  # --endpoint-reconciler-type=none: a loopback advertise address is refused in Endpoints otherwise.
  setsid "$APISERVER" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --tls-cert-file="$STATE_DIR/pki/apiserver.crt" --tls-private-key-file="$STATE_DIR/pki/apiserver.key" \
    --client-ca-file="$STATE_DIR/pki/ca.crt" \
    --authorization-mode=RBAC \
    --token-auth-file="$STATE_DIR/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$STATE_DIR/pki/sa.pub" \
    --service-account-signing-key-file="$STATE_DIR/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 \
    --endpoint-reconciler-type=none \
    --watch-cache-sizes=pods#0 \
    --etcd-compaction-interval=0 \
    --profiling=false \
    </dev/null >"$STATE_DIR/apiserver.log" 2>&1 8>&- 9>&- &
  echo $! >"$STATE_DIR/apiserver.pid"
  wait_for kube-apiserver "$STATE_DIR/apiserver.pid" "$STATE_DIR/apiserver.log" \
    curl -sf --max-time 2 --cacert "$STATE_DIR/pki/ca.crt" -H "Authorization: Bearer $admin_token" "$url/readyz"

  cat >"$STATE_DIR/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: logferry-test
    cluster:
      server: $url
      certificate-authority: $STATE_DIR/pki/ca.crt
users:
  - name: logferry-test-admin
    user:
      token: $admin_token
contexts:
  - name: logferry-test
    context:
      cluster: logferry-test
      user: logferry-test-admin
current-context: logferry-test
EOF
  chmod 600 "$STATE_DIR/admin.kubeconfig"
  {
    echo "export LOGFERRY_TEST_KUBE_URL=$url"
    echo "export LOGFERRY_TEST_KUBE_CA_FILE=$STATE_DIR/pki/ca.crt"
    echo "export LOGFERRY_TEST_KUBE_ADMIN_TOKEN_FILE=$STATE_DIR/admin.token"
    echo "export LOGFERRY_TEST_KUBE_KUBECONFIG=$STATE_DIR/admin.kubeconfig"
    echo "export LOGFERRY_TEST_KUBE_ETCD_URL=$etcd_url"
    echo "export LOGFERRY_TEST_KUBE_VERSION=$KUBE_VERSION"
  } >"$ENV_FILE"
  log "ready at $url after $((SECONDS - started_at)) s (environment: scripts/kube-test-server.sh env)"
  printf '%s\n' "$url"
}

stop_pid() {
  local name="$1" file="$STATE_DIR/$1.pid" pid waited=0
  if pid_alive "$file"; then
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 40 ]; do
      sleep 0.25
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name ($pid) ignored SIGTERM for 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name ($pid)"
  fi
  rm -f "$file"
}

cmd_stop() {
  stop_pid apiserver
  stop_pid etcd
  rm -f "$ENV_FILE"
}

cmd_env() {
  [ -f "$ENV_FILE" ] && pid_alive "$STATE_DIR/apiserver.pid" || die 'not running (use: scripts/kube-test-server.sh start)'
  cat "$ENV_FILE"
}

cmd_status() {
  if [ ! -f "$ENV_FILE" ] || ! pid_alive "$STATE_DIR/apiserver.pid"; then
    echo 'stopped'
    return 1
  fi
  local url
  url="$(sed -n 's/^export LOGFERRY_TEST_KUBE_URL=//p' "$ENV_FILE")"
  if curl -sf --max-time 5 --cacert "$STATE_DIR/pki/ca.crt" -H "Authorization: Bearer $(cat "$STATE_DIR/admin.token")" \
    "$url/readyz" >/dev/null 2>&1; then
    echo "running at $url"
  else
    echo "not answering at $url"
    return 1
  fi
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
  start | stop)
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 1800 9 || die "another start/stop holds $STATE_DIR/.lock"
    "cmd_$cmd"
    ;;
  fetch) cmd_fetch ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *)
    echo 'usage: scripts/kube-test-server.sh fetch|start|stop|env|status' >&2
    exit 2
    ;;
  esac
}

main "$@"
