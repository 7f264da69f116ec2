#!/usr/bin/env bash
# The real-Elasticsearch suites against a real 9.x node (#14): the contract and client-version checks
# (test/integration/es-infra-real.test.ts) and `tail --es` end to end (the "real" part of es-output.test.ts).
# Starts the node with es-test-server.sh (fetched once into the cache; a running node with the same settings is
# reused) and leaves it running: `LOGFERRY_ES_VERSION=9 scripts/es-test-server.sh stop` stops it.
# LOGFERRY_ES_VERSION picks another 9.x (exact version).
set -euo pipefail
cd "$(dirname "$0")/.."
export LOGFERRY_ES_VERSION="${LOGFERRY_ES_VERSION:-9}"
LOGFERRY_TEST_ES_URL="$(LOGFERRY_ES_NODES=1 bash scripts/es-test-server.sh start)"
export LOGFERRY_TEST_ES_URL
export LOGFERRY_TEST_ES_MAJOR="${LOGFERRY_ES_VERSION%%.*}"
echo "test-es9: real Elasticsearch $LOGFERRY_ES_VERSION at $LOGFERRY_TEST_ES_URL"
exec npx vitest run test/integration/es-infra-real.test.ts test/integration/es-output.test.ts -t 'real Elasticsearch'
