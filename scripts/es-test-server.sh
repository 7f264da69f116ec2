#!/usr/bin/env bash
# A real Elasticsearch on loopback for integration and fault tests: one node, or a three-node cluster.
#
#   scripts/es-test-server.sh fetch         fetch and unpack the distribution (once; later calls are no-ops)
#   scripts/es-test-server.sh start         fetch (once), start with empty data, wait for the cluster, print the URL(s)
#   scripts/es-test-server.sh stop          stop the node(s) started by `start`
#   scripts/es-test-server.sh url           print the URL of the running node (of node 0 in a cluster; exit 1 if none)
#   scripts/es-test-server.sh urls          print every node's URL, comma-separated (for `--es`)
#   scripts/es-test-server.sh status        exit 0 when the node(s) answer
#   scripts/es-test-server.sh kill-node N   cluster: SIGKILL node N (0-2) and wait until it is gone
#   scripts/es-test-server.sh stop-node N   cluster: stop node N gracefully (SIGTERM)
#   scripts/es-test-server.sh start-node N  cluster: start node N again on its own data, wait until it joined
#
# LOGFERRY_ES_VERSION=8 (the default) or 9 picks the pinned version of that major; an exact version works too.
# Each major has its own state dir, so an 8 and a 9 node can run at once. LOGFERRY_ES_NODES=3 runs a cluster on
# fixed ports (HTTP 9460-9462, transport 9463-9465), each node with its own data dir; its state dir is separate
# from the single node's.
#
# The distribution is Maven Central's integ-test-zip: a stripped but real Elasticsearch (server, transport,
# x-pack core/security; no data streams, no ingest-common, no JDK). It is the only Elasticsearch this
# network reaches, so it is fetched with mvn. See docs/testing-elasticsearch.md for the environment variables.
set -euo pipefail

# Pinned versions: 8.19.21 is the last 8.x on Central's metadata; 9.x zips resolve only by exact version, and
# 9.3.2 was the newest that did (9.3.3 and 9.4.0 did not, 2026-12-07).
ES8_VERSION=8.19.21
ES9_VERSION=9.3.2
case "${LOGFERRY_ES_VERSION:-8}" in
8) ES_VERSION=$ES8_VERSION ;;
9) ES_VERSION=$ES9_VERSION ;;
*) ES_VERSION="$LOGFERRY_ES_VERSION" ;;
esac
ES_MAJOR="${ES_VERSION%%.*}"
NODES="${LOGFERRY_ES_NODES:-1}"
case "$NODES" in
1 | 3) ;;
*)
  echo "es-test-server: LOGFERRY_ES_NODES must be 1 or 3, not '$NODES'" >&2
  exit 2
  ;;
esac
CACHE_DIR="${LOGFERRY_ES_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logferry-es}"
# Data, logs and config live apart from the unpacked distribution so the distribution stays read-only and
# every `start` begins with an empty cluster.
if [ "$NODES" -gt 1 ]; then
  STATE_DIR="${LOGFERRY_ES_STATE_DIR:-${TMPDIR:-/tmp}/logferry-es-$(id -u)-es$ES_MAJOR-cluster}"
else
  STATE_DIR="${LOGFERRY_ES_STATE_DIR:-${TMPDIR:-/tmp}/logferry-es-$(id -u)-es$ES_MAJOR}"
fi
ES_USER="${LOGFERRY_ES_USER:-logferry-es}"
# A range: the first free port is taken, so a second node (another major, another checkout) finds its own.
if [ "$ES_MAJOR" -ge 9 ]; then
  HTTP_PORTS="${LOGFERRY_ES_PORT:-9300-9349}"
else
  HTTP_PORTS="${LOGFERRY_ES_PORT:-9250-9299}"
fi
CLUSTER_HTTP_BASE="${LOGFERRY_ES_CLUSTER_PORT:-9460}"
CLUSTER_TRANSPORT_BASE=$((CLUSTER_HTTP_BASE + 3))
HEAP="${LOGFERRY_ES_HEAP:-512m}"
if [ "$NODES" -gt 1 ]; then
  CLUSTER_NAME=logferry-cluster
else
  CLUSTER_NAME=logferry-test
fi
# Three JVMs starting at once on a 2-core machine took 2-4 minutes when it was busy.
if [ "$NODES" -gt 1 ]; then
  START_TIMEOUT_S="${LOGFERRY_ES_START_TIMEOUT_S:-360}"
else
  START_TIMEOUT_S="${LOGFERRY_ES_START_TIMEOUT_S:-180}"
fi
WRITE_QUEUE_SIZE="${LOGFERRY_ES_WRITE_QUEUE_SIZE:-}"
MAX_CONTENT_LENGTH="${LOGFERRY_ES_MAX_CONTENT_LENGTH:-}"

DIST_DIR="$CACHE_DIR/elasticsearch-$ES_VERSION"
URL_FILE="$STATE_DIR/url"

LOG_NAME=es-test-server
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"



# Where node N keeps its config, data, logs and pid: the single node uses the state dir itself.
node_dir() {
  if [ "$NODES" -gt 1 ]; then
    printf '%s\n' "$STATE_DIR/node-$1"
  else
    printf '%s\n' "$STATE_DIR"
  fi
}

java_ok() { [ -x "$1/bin/java" ]; }

find_java_home() {
  if [ -n "${LOGFERRY_ES_JAVA_HOME:-}" ]; then
    printf '%s\n' "$LOGFERRY_ES_JAVA_HOME"
    return
  fi
  local candidate
  if [ "$ES_MAJOR" -ge 9 ]; then
    # 9.x needs Java 21+ (and ships none in this distribution)
    for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-25-jdk-arm64 /usr/lib/jvm/temurin-25-jdk \
      /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/java-25-openjdk-arm64 /usr/lib/jvm/temurin-21-jdk-amd64 \
      /usr/lib/jvm/java-21-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-arm64; do
      if java_ok "$candidate"; then
        printf '%s\n' "$candidate"
        return
      fi
    done
    die "no Java 21+ found for Elasticsearch $ES_VERSION: install one (e.g. Temurin 25) or set LOGFERRY_ES_JAVA_HOME"
  fi
  # 8.x runs on Java 17+; prefer an explicit 17 so a newer default JDK cannot surprise us.
  for candidate in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/java-17-openjdk; do
    if java_ok "$candidate"; then
      printf '%s\n' "$candidate"
      return
    fi
  done
  if [ -n "${JAVA_HOME:-}" ] && java_ok "$JAVA_HOME"; then
    printf '%s\n' "$JAVA_HOME"
    return
  fi
  local java
  java="$(command -v java || true)"
  [ -n "$java" ] || die 'no Java found: install a JDK 17+ or set LOGFERRY_ES_JAVA_HOME'
  dirname "$(dirname "$(readlink -f "$java")")"
}

fetch_distribution() {
  if [ -x "$DIST_DIR/bin/elasticsearch" ]; then
    return
  fi
  command -v mvn >/dev/null || die 'mvn not found: it is needed once to fetch Elasticsearch from Maven Central'
  command -v unzip >/dev/null || die 'unzip not found'
  mkdir -p "$CACHE_DIR"
  # Two fetches of one version at once (8 and 9 start in parallel in CI, or two checkouts) must not share
  # a download dir.
  exec 8>"$CACHE_DIR/.fetch-$ES_VERSION.lock"
  flock -w 600 8 || die "another fetch of $ES_VERSION holds $CACHE_DIR/.fetch-$ES_VERSION.lock"
  if [ -x "$DIST_DIR/bin/elasticsearch" ]; then
    return
  fi
  local download="$CACHE_DIR/download-$ES_VERSION"
  rm -rf "$download" "$DIST_DIR.partial"
  mkdir -p "$download"
  log "fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip with mvn"
  local repo_args=()
  if [ -n "${LOGFERRY_ES_MAVEN_REPO:-}" ]; then
    repo_args=("-Dmaven.repo.local=$LOGFERRY_ES_MAVEN_REPO")
  fi
  mvn -B -q --no-transfer-progress -Dstyle.color=never "${repo_args[@]}" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$download" </dev/null >"$CACHE_DIR/mvn-$ES_VERSION.log" 2>&1 || {
    tail -n 40 "$CACHE_DIR/mvn-$ES_VERSION.log" >&2 || true
    die "mvn could not fetch Elasticsearch $ES_VERSION (log: $CACHE_DIR/mvn-$ES_VERSION.log)"
  }
  # Unpack beside the final place and rename, so an interrupted unzip never looks like a finished one.
  mkdir -p "$DIST_DIR.partial"
  unzip -q "$download/elasticsearch-$ES_VERSION.zip" -d "$DIST_DIR.partial"
  mv "$DIST_DIR.partial/elasticsearch-$ES_VERSION" "$DIST_DIR"
  rm -rf "$DIST_DIR.partial" "$download"
}

ensure_user() {
  is_root || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "creating system user $ES_USER"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER" 2>/dev/null || id -u "$ES_USER" >/dev/null
  fi
}

# The home Elasticsearch runs from. As root the cache is usually under /root, which the unprivileged user
# cannot enter, so it runs from a hard-linked copy in the state dir (a plain copy across file systems).
es_home() {
  if ! is_root || runuser -u "$ES_USER" -- test -r "$DIST_DIR/lib" 2>/dev/null; then
    printf '%s\n' "$DIST_DIR"
    return
  fi
  local home="$STATE_DIR/home-$ES_VERSION"
  if [ ! -x "$home/bin/elasticsearch" ]; then
    rm -rf "$home"
    cp -al "$DIST_DIR" "$home" 2>/dev/null || {
      rm -rf "$home"
      cp -a "$DIST_DIR" "$home"
    }
  fi
  printf '%s\n' "$home"
}

running_pid() {
  local pid_file
  pid_file="$(node_dir "${1:-0}")/es.pid"
  [ -f "$pid_file" ] || return 1
  local pid
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

answers() {
  local url="$1"
  curl -sf --max-time 5 "$url/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

# A node has joined when it answers and the cluster it sees has all nodes.
cluster_complete() {
  local url="$1"
  curl -sf --max-time 5 "$url/_cluster/health?wait_for_nodes=$NODES&wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

cluster_url() { printf 'http://127.0.0.1:%s\n' "$((CLUSTER_HTTP_BASE + $1))"; }

all_urls() {
  local i urls=''
  for ((i = 0; i < NODES; i++)); do
    urls="$urls${urls:+,}$(cluster_url "$i")"
  done
  printf '%s\n' "$urls"
}

# Node N's settings. Printed rather than written so `start` can tell whether a running node already has them.
desired_config() {
  local i="$1" dir
  dir="$(node_dir "$i")"
  {
    echo "# logferry test node: Elasticsearch $ES_VERSION, $NODES node(s), heap $HEAP, java opts ${LOGFERRY_ES_JAVA_OPTS:-none}"
    echo "cluster.name: $CLUSTER_NAME"
    echo 'network.host: 127.0.0.1'
    if [ "$NODES" -gt 1 ]; then
      local seeds='' masters='' j
      for ((j = 0; j < NODES; j++)); do
        seeds="$seeds${seeds:+, }\"127.0.0.1:$((CLUSTER_TRANSPORT_BASE + j))\""
        masters="$masters${masters:+, }\"logferry-node-$j\""
      done
      echo "node.name: logferry-node-$i"
      echo "http.port: $((CLUSTER_HTTP_BASE + i))"
      echo "transport.port: $((CLUSTER_TRANSPORT_BASE + i))"
      echo "discovery.seed_hosts: [$seeds]"
      echo "cluster.initial_master_nodes: [$masters]"
    else
      echo 'node.name: logferry-test-0'
      echo 'discovery.type: single-node'
      echo "http.port: $HTTP_PORTS"
      echo 'transport.port: 9350-9399'
    fi
    echo "path.data: $dir/data"
    echo "path.logs: $dir/logs"
    echo 'xpack.security.enabled: false'
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
  local home="$1" i="$2" dir
  dir="$(node_dir "$i")"
  local conf="$dir/config"
  rm -rf "$conf"
  mkdir -p "$conf"
  cp "$home/config/jvm.options" "$home/config/log4j2.properties" "$conf/"
  if [ -d "$home/config/jvm.options.d" ]; then
    cp -r "$home/config/jvm.options.d" "$conf/"
  fi
  desired_config "$i" >"$conf/elasticsearch.yml"
}

print_log_tail() {
  local dir
  dir="$(node_dir "$1")"
  tail -n 80 "$dir/logs/$CLUSTER_NAME.log" >&2 2>/dev/null || tail -n 50 "$dir/launcher.log" >&2 || true
}

# Starts node N on what its dir holds (config must be written); returns once the launcher has daemonized it.
launch_node() {
  local i="$1" home="$2" java_home="$3" dir
  dir="$(node_dir "$i")"
  if is_root; then
    chown -R "$ES_USER" "$dir/data" "$dir/logs" "$dir/config"
    # The server writes its pid file here.
    chown "$ES_USER" "$dir"
  fi
  rm -f "$dir/logs/http.ports"
  log "starting Elasticsearch $ES_VERSION node $i from $home (Java: $java_home, heap $HEAP)"
  as_user "$ES_USER" env \
    ES_JAVA_HOME="$java_home" \
    ES_PATH_CONF="$dir/config" \
    ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${LOGFERRY_ES_JAVA_OPTS:-}" \
    "$home/bin/elasticsearch" -d -p "$dir/es.pid" </dev/null >"$dir/launcher.log" 2>&1 || {
    log "launcher of node $i failed:"
    tail -n 50 "$dir/launcher.log" >&2 || true
    print_log_tail "$i"
    return 1
  }
}

# Waits until node N answers (and, in a cluster, sees every node); prints its URL.
wait_node() {
  local i="$1" started_at="$2" dir url=''
  dir="$(node_dir "$i")"
  while [ $((SECONDS - started_at)) -lt "$START_TIMEOUT_S" ]; do
    if [ "$NODES" -gt 1 ]; then
      url="$(cluster_url "$i")"
      if cluster_complete "$url"; then
        printf '%s\n' "$url"
        return
      fi
    else
      if [ -z "$url" ] && [ -s "$dir/logs/http.ports" ]; then
        url="http://$(head -n 1 "$dir/logs/http.ports")"
      fi
      if [ -n "$url" ] && answers "$url"; then
        printf '%s\n' "$url"
        return
      fi
    fi
    if ! running_pid "$i" >/dev/null && [ -f "$dir/es.pid" ]; then
      break
    fi
    sleep 1
  done
  log "Elasticsearch node $i did not become ready within $START_TIMEOUT_S s; log tail:"
  print_log_tail "$i"
  return 1
}

all_configs_match() {
  local i
  for ((i = 0; i < NODES; i++)); do
    running_pid "$i" >/dev/null || return 1
    desired_config "$i" | cmp -s - "$(node_dir "$i")/config/elasticsearch.yml" || return 1
  done
}

cmd_fetch() {
  fetch_distribution
  log "Elasticsearch $ES_VERSION is in $DIST_DIR"
}

cmd_start() {
  if all_configs_match && [ -f "$URL_FILE" ] && answers "$(cut -d, -f1 "$URL_FILE")"; then
    cmd_urls
    return
  fi
  # A dead or half-started node, or one started with other settings: replace it with a fresh one.
  cmd_stop >/dev/null 2>&1 || true

  fetch_distribution
  ensure_user
  mkdir -p "$STATE_DIR"
  local home java_home i dir
  home="$(es_home)"
  java_home="$(find_java_home)"
  rm -f "$URL_FILE"
  for ((i = 0; i < NODES; i++)); do
    dir="$(node_dir "$i")"
    rm -rf "$dir/data" "$dir/logs" "$dir/es.pid"
    mkdir -p "$dir/data" "$dir/logs"
    write_config "$home" "$i"
  done

  local started_at=$SECONDS url urls='' pids=() failed=0
  # In parallel: `elasticsearch -d` returns once its node has started, which in a cluster waits for the
  # others (up to discovery.initial_state_timeout, 30 s, each, one after the other).
  for ((i = 0; i < NODES; i++)); do
    launch_node "$i" "$home" "$java_home" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  if [ "$failed" -ne 0 ]; then
    cmd_stop >/dev/null 2>&1 || true
    exit 1
  fi
  for ((i = 0; i < NODES; i++)); do
    url="$(wait_node "$i" "$started_at")" || {
      cmd_stop >/dev/null 2>&1 || true
      exit 1
    }
    urls="$urls${urls:+,}$url"
  done
  printf '%s\n' "$urls" >"$URL_FILE"
  log "ready at $urls after $((SECONDS - started_at)) s"
  printf '%s\n' "$urls"
}

stop_node() {
  local i="$1" signal="$2" pid
  if pid="$(running_pid "$i")"; then
    kill "-$signal" "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 60 ]; do
      sleep 0.5
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "Elasticsearch node $i ($pid) ignored SIG$signal for 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
    fi
    log "node $i stopped ($pid, SIG$signal)"
  fi
  rm -f "$(node_dir "$i")/es.pid"
}

cmd_stop() {
  local i
  for ((i = 0; i < NODES; i++)); do
    stop_node "$i" TERM
  done
  rm -f "$URL_FILE"
}

node_arg() {
  [ "$NODES" -gt 1 ] || die "$1 needs a cluster: set LOGFERRY_ES_NODES=3"
  case "${2:-}" in
  [0-9]) [ "$2" -lt "$NODES" ] || die "$1: no node $2 (nodes are 0-$((NODES - 1)))" ;;
  *) die "$1: give a node number 0-$((NODES - 1))" ;;
  esac
  [ -f "$URL_FILE" ] || die 'no cluster started (use: LOGFERRY_ES_NODES=3 scripts/es-test-server.sh start)'
}

cmd_kill_node() {
  node_arg kill-node "$1"
  stop_node "$1" KILL
}

cmd_stop_node() {
  node_arg stop-node "$1"
  stop_node "$1" TERM
}

cmd_start_node() {
  node_arg start-node "$1"
  if running_pid "$1" >/dev/null; then
    cluster_url "$1"
    return
  fi
  local home java_home started_at=$SECONDS
  home="$(es_home)"
  java_home="$(find_java_home)"
  launch_node "$1" "$home" "$java_home" || exit 1
  wait_node "$1" "$started_at" || exit 1
  log "node $1 joined after $((SECONDS - started_at)) s"
}

cmd_urls() {
  # a cluster keeps its URLs while single nodes are down (kill-node); a single node must be running
  if [ ! -f "$URL_FILE" ] || { [ "$NODES" -eq 1 ] && ! running_pid 0 >/dev/null; }; then
    die "not running (use: LOGFERRY_ES_VERSION=$ES_MAJOR LOGFERRY_ES_NODES=$NODES scripts/es-test-server.sh start)"
  fi
  if [ "$NODES" -gt 1 ]; then
    all_urls
  else
    cat "$URL_FILE"
  fi
}

cmd_url() {
  cmd_urls | cut -d, -f1
}

cmd_status() {
  local urls url
  urls="$(cmd_urls 2>/dev/null)" || {
    echo 'stopped'
    exit 1
  }
  local bad=0
  for url in ${urls//,/ }; do
    if answers "$url"; then
      echo "running at $url"
    else
      echo "not answering at $url"
      bad=1
    fi
  done
  exit "$bad"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
  start | stop | kill-node | stop-node | start-node)
    mkdir -p "$STATE_DIR"
    # Two CI steps starting at once must not race for the same state dir.
    exec 9>"$STATE_DIR/.lock"
    flock -w 300 9 || die "another command holds $STATE_DIR/.lock"
    case "$cmd" in
    start | stop) "cmd_$cmd" ;;
    *) "cmd_${cmd//-/_}" "${2:-}" ;;
    esac
    ;;
  fetch) cmd_fetch ;;
  url) cmd_url ;;
  urls) cmd_urls ;;
  status) cmd_status ;;
  *)
    echo 'usage: scripts/es-test-server.sh fetch|start|stop|url|urls|status|kill-node N|stop-node N|start-node N' >&2
    exit 2
    ;;
  esac
}

main "$@"
