#!/usr/bin/env bash
# A real, single-node OpenSearch on loopback for the OpenSearch output suite (npm run test:opensearch).
#
#   scripts/os-test-server.sh start   fetch (once), start, wait for yellow, print the URL
#   scripts/os-test-server.sh stop    stop the node started by `start`
#   scripts/os-test-server.sh url     print the URL of the running node (exit 1 if none)
#   scripts/os-test-server.sh status  exit 0 when the node answers
#
# The distribution is Maven Central's integ-test-zip: a real OpenSearch server with its core modules and no
# plugins (so no security plugin: plain HTTP, no credentials) and no JDK. It is the only OpenSearch this
# network reaches, so it is fetched with mvn. It is a twin of scripts/os-test-server.sh (same commands, same
# layout of cache and state); docs/opensearch.md lists the environment variables.
set -euo pipefail

OS_VERSION="${LOGFERRY_OS_VERSION:-2.19.6}"
CACHE_DIR="${LOGFERRY_OS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logferry-os}"
# Data, logs and config live apart from the unpacked distribution so the distribution stays read-only and
# every `start` begins with an empty cluster.
STATE_DIR="${LOGFERRY_OS_STATE_DIR:-${TMPDIR:-/tmp}/logferry-os-$(id -u)}"
OS_USER="${LOGFERRY_OS_SYSTEM_USER:-logferry-os}"
HTTP_PORTS="${LOGFERRY_OS_PORT:-9500-9549}"
HEAP="${LOGFERRY_OS_HEAP:-512m}"
START_TIMEOUT_S="${LOGFERRY_OS_START_TIMEOUT_S:-120}"
WRITE_QUEUE_SIZE="${LOGFERRY_OS_WRITE_QUEUE_SIZE:-}"
MAX_CONTENT_LENGTH="${LOGFERRY_OS_MAX_CONTENT_LENGTH:-}"

DIST_DIR="$CACHE_DIR/opensearch-$OS_VERSION"
PID_FILE="$STATE_DIR/os.pid"
URL_FILE="$STATE_DIR/url"

LOG_NAME=os-test-server
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


find_java_home() {
  if [ -n "${LOGFERRY_OS_JAVA_HOME:-}" ]; then
    printf '%s\n' "$LOGFERRY_OS_JAVA_HOME"
    return
  fi
  # 2.x runs on Java 11+, 3.x on 21+: prefer an explicit 17 (the tested one) so a newer default JDK cannot surprise us.
  local candidate
  for candidate in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/java-17-openjdk; do
    if [ -x "$candidate/bin/java" ]; then
      printf '%s\n' "$candidate"
      return
    fi
  done
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    printf '%s\n' "$JAVA_HOME"
    return
  fi
  local java
  java="$(command -v java || true)"
  [ -n "$java" ] || die 'no Java found: install a JDK 17+ (21+ for OpenSearch 3.x) or set LOGFERRY_OS_JAVA_HOME'
  dirname "$(dirname "$(readlink -f "$java")")"
}

fetch_distribution() {
  if [ -x "$DIST_DIR/bin/opensearch" ]; then
    return
  fi
  command -v mvn >/dev/null || die 'mvn not found: it is needed once to fetch OpenSearch from Maven Central'
  command -v unzip >/dev/null || die 'unzip not found'
  mkdir -p "$CACHE_DIR"
  local download="$CACHE_DIR/download"
  rm -rf "$download" "$DIST_DIR.partial"
  mkdir -p "$download"
  log "fetching org.opensearch.distribution.integ-test-zip:opensearch:$OS_VERSION:zip with mvn"
  local repo_args=()
  if [ -n "${LOGFERRY_OS_MAVEN_REPO:-}" ]; then
    repo_args=("-Dmaven.repo.local=$LOGFERRY_OS_MAVEN_REPO")
  fi
  mvn -B -q --no-transfer-progress -Dstyle.color=never "${repo_args[@]}" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$OS_VERSION:zip" \
    -DoutputDirectory="$download" </dev/null >"$CACHE_DIR/mvn.log" 2>&1 || {
    tail -n 40 "$CACHE_DIR/mvn.log" >&2 || true
    die "mvn could not fetch OpenSearch $OS_VERSION (log: $CACHE_DIR/mvn.log)"
  }
  # Unpack beside the final place and rename, so an interrupted unzip never looks like a finished one.
  mkdir -p "$DIST_DIR.partial"
  unzip -q "$download/opensearch-$OS_VERSION.zip" -d "$DIST_DIR.partial"
  mv "$DIST_DIR.partial/opensearch-$OS_VERSION" "$DIST_DIR"
  rm -rf "$DIST_DIR.partial" "$download"
}

ensure_user() {
  is_root || return 0
  if ! id -u "$OS_USER" >/dev/null 2>&1; then
    log "creating system user $OS_USER"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
  fi
}

# The home OpenSearch runs from. As root the cache is usually under /root, which the unprivileged user
# cannot enter, so it runs from a hard-linked copy in the state dir (a plain copy across file systems).
os_home() {
  if ! is_root || runuser -u "$OS_USER" -- test -r "$DIST_DIR/lib" 2>/dev/null; then
    printf '%s\n' "$DIST_DIR"
    return
  fi
  local home="$STATE_DIR/home-$OS_VERSION"
  if [ ! -x "$home/bin/opensearch" ]; then
    rm -rf "$home"
    cp -al "$DIST_DIR" "$home" 2>/dev/null || {
      rm -rf "$home"
      cp -a "$DIST_DIR" "$home"
    }
  fi
  printf '%s\n' "$home"
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

answers() {
  local url="$1"
  curl -sf --max-time 5 "$url/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

# The node's settings. Printed rather than written so `start` can tell whether a running node already has them.
desired_config() {
  {
    echo "# logferry test node: OpenSearch $OS_VERSION, heap $HEAP, java opts ${LOGFERRY_OS_JAVA_OPTS:-none}"
    echo 'cluster.name: logferry-test'
    echo 'node.name: logferry-test-0'
    echo 'discovery.type: single-node'
    echo 'network.host: 127.0.0.1'
    echo "http.port: $HTTP_PORTS"
    echo 'transport.port: 9550-9599'
    echo "path.data: $STATE_DIR/data"
    echo "path.logs: $STATE_DIR/logs"
    # Writes logs/http.ports once bound, which is how we learn the port picked from the range.
    echo 'node.portsfile: true'
    # A nearly full CI disk must not leave shards unassigned and the cluster red.
    echo 'cluster.routing.allocation.disk.threshold_enabled: false'
    # Tests clean up with wildcard deletes.
    echo 'action.destructive_requires_name: false'
    if [ -n "$WRITE_QUEUE_SIZE" ]; then
      echo "thread_pool.write.queue_size: $WRITE_QUEUE_SIZE"
    fi
    if [ -n "$MAX_CONTENT_LENGTH" ]; then
      echo "http.max_content_length: $MAX_CONTENT_LENGTH"
    fi
  }
}

write_config() {
  local home="$1"
  local conf="$STATE_DIR/config"
  rm -rf "$conf"
  mkdir -p "$conf"
  cp "$home/config/jvm.options" "$home/config/log4j2.properties" "$conf/"
  if [ -d "$home/config/jvm.options.d" ]; then
    cp -r "$home/config/jvm.options.d" "$conf/"
  fi
  # jvm.options names logs/gc.log, the error file and the heap dump path relative to the distribution,
  # which the unprivileged user cannot write: point them at the state dir
  sed -i -e "s#logs/#$STATE_DIR/logs/#g" -e "s#HeapDumpPath=data#HeapDumpPath=$STATE_DIR/data#" "$conf/jvm.options"
  desired_config >"$conf/opensearch.yml"
}

cmd_start() {
  if running_pid >/dev/null && [ -f "$URL_FILE" ] && answers "$(cat "$URL_FILE")" &&
    desired_config | cmp -s - "$STATE_DIR/config/opensearch.yml"; then
    cat "$URL_FILE"
    return
  fi
  # A dead or half-started node, or one started with other settings: replace it with a fresh one.
  cmd_stop >/dev/null 2>&1 || true

  fetch_distribution
  ensure_user
  mkdir -p "$STATE_DIR"
  local home java_home
  home="$(os_home)"
  java_home="$(find_java_home)"
  rm -rf "$STATE_DIR/data" "$STATE_DIR/logs" "$URL_FILE" "$PID_FILE"
  mkdir -p "$STATE_DIR/data" "$STATE_DIR/logs"
  write_config "$home"
  if is_root; then
    chown -R "$OS_USER" "$STATE_DIR/data" "$STATE_DIR/logs" "$STATE_DIR/config"
    # The server writes its pid file here.
    chown "$OS_USER" "$STATE_DIR"
  fi

  local started_at=$SECONDS
  log "starting OpenSearch $OS_VERSION from $home (Java: $java_home)"
  as_user "$OS_USER" env \
    OPENSEARCH_JAVA_HOME="$java_home" \
    OPENSEARCH_PATH_CONF="$STATE_DIR/config" \
    OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${LOGFERRY_OS_JAVA_OPTS:-}" \
    "$home/bin/opensearch" -d -p "$PID_FILE" </dev/null >"$STATE_DIR/launcher.log" 2>&1 9>&- || {
    log 'launcher failed:'
    tail -n 50 "$STATE_DIR/launcher.log" >&2 || true
    tail -n 80 "$STATE_DIR/logs/logferry-test.log" >&2 2>/dev/null || true
    exit 1
  }

  local url=''
  while [ $((SECONDS - started_at)) -lt "$START_TIMEOUT_S" ]; do
    if [ -z "$url" ] && [ -s "$STATE_DIR/logs/http.ports" ]; then
      url="http://$(head -n 1 "$STATE_DIR/logs/http.ports")"
    fi
    if [ -n "$url" ] && answers "$url"; then
      printf '%s\n' "$url" >"$URL_FILE"
      log "ready at $url after $((SECONDS - started_at)) s"
      printf '%s\n' "$url"
      return
    fi
    if ! running_pid >/dev/null && [ -f "$PID_FILE" ]; then
      break
    fi
    sleep 1
  done
  log "OpenSearch did not become ready within $START_TIMEOUT_S s; log tail:"
  tail -n 80 "$STATE_DIR/logs/logferry-test.log" >&2 2>/dev/null || tail -n 50 "$STATE_DIR/launcher.log" >&2 || true
  cmd_stop >/dev/null 2>&1 || true
  exit 1
}

cmd_stop() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do
      sleep 1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "OpenSearch ($pid) ignored SIGTERM for 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped ($pid)"
  fi
  rm -f "$PID_FILE" "$URL_FILE"
}

cmd_url() {
  if ! running_pid >/dev/null || [ ! -f "$URL_FILE" ]; then
    die 'not running (use: scripts/os-test-server.sh start)'
  fi
  cat "$URL_FILE"
}

cmd_status() {
  local url
  url="$(cmd_url 2>/dev/null)" || {
    echo 'stopped'
    exit 1
  }
  if answers "$url"; then
    echo "running at $url"
  else
    echo "not answering at $url"
    exit 1
  fi
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
  start | stop)
    mkdir -p "$STATE_DIR"
    # Two CI steps starting at once must not race for the same state dir. (The node is started with
    # this descriptor closed: a daemon holding it would block every later start and stop.)
    exec 9>"$STATE_DIR/.lock"
    flock -w 180 9 || die "another start/stop holds $STATE_DIR/.lock"
    "cmd_$cmd"
    ;;
  url) cmd_url ;;
  status) cmd_status ;;
  *)
    echo 'usage: scripts/os-test-server.sh start|stop|url|status' >&2
    exit 2
    ;;
  esac
}

main "$@"
