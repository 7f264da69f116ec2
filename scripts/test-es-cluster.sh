#!/usr/bin/env bash
# The three-node reliability test (#14, test/integration/es-cluster.test.ts): starts a real cluster with
# es-test-server.sh (LOGFERRY_ES_NODES=3, Elasticsearch 9 unless LOGFERRY_ES_VERSION says otherwise; a running
# cluster with the same settings is reused), then runs the test, which kills, restarts and stops nodes itself.
# The cluster is left running: `LOGFERRY_ES_VERSION=9 LOGFERRY_ES_NODES=3 scripts/es-test-server.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOGFERRY_ES_VERSION="${LOGFERRY_ES_VERSION:-9}"
urls="$(LOGFERRY_ES_NODES=3 bash scripts/es-test-server.sh start)"
echo "test-es-cluster: Elasticsearch $LOGFERRY_ES_VERSION cluster at $urls"
LOGFERRY_TEST_ES_CLUSTER=1 exec npx vitest run test/integration/es-cluster.test.ts
