#!/usr/bin/env bash
# Helm for the chart tests: built once from the Go module proxy, then reused.
#
#   scripts/helm.sh          build helm (once) and print the path of its binary
#   scripts/helm.sh path     print the path if helm is already built (exit 1 if not), never builds
#
# Helm is not packaged for these machines and no other download is reachable, but Go and its module
# proxy are: `go install helm.sh/helm/v4/cmd/helm@<version>` with GOBIN pointing into the cache.
# The cache is keyed by version (~/.cache/logferry-helm/<version>/helm), as Node and Elasticsearch are,
# so a warm CI does not build again. Measured (v4.3.2, go1.26.8): compiling with an empty Go build cache
# costs about 320 CPU-seconds (~3 minutes on 2 idle cores; 18-22 minutes on a machine shared with five
# other builds) and 1.2 GB peak RSS, plus the module download; relinking with warm Go caches, ~20 s.
set -euo pipefail

HELM_VERSION="${LOGFERRY_HELM_VERSION:-v4.3.2}"
CACHE_DIR="${LOGFERRY_HELM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/logferry-helm}"
BIN_DIR="$CACHE_DIR/$HELM_VERSION"
HELM="$BIN_DIR/helm"

LOG_NAME=helm.sh
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The binary runs and is the version asked for (a binary built without the version stamp says "v4.3").
works() { [ -x "$HELM" ] && [ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; }

if [ "${1:-}" = "path" ]; then
  works || exit 1
  printf '%s\n' "$HELM"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument '$1': use no argument (build and print the path) or 'path'"

if ! works; then
  command -v go >/dev/null || die 'go not found: it is needed once to build helm from the Go module proxy'
  mkdir -p "$CACHE_DIR"
  # One build at a time: two CI runs (or helpers) sharing a cache would otherwise both write the binary.
  exec 9>"$CACHE_DIR/.lock"
  flock 9
  if ! works; then
    partial="$BIN_DIR.partial"
    rm -rf "$partial"
    mkdir -p "$partial"
    log "building helm.sh/helm/v4/cmd/helm@$HELM_VERSION with $(go version | cut -d' ' -f3) into $BIN_DIR (minutes the first time)"
    # CGO off: a static binary that does not depend on the build machine's libc. The version stamp is what
    # helm's own Makefile sets (go install alone leaves helm reporting "v4.3"); -s -w: no debug symbols.
    CGO_ENABLED=0 GOBIN="$partial" go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2 || die "go install helm@$HELM_VERSION failed (see above)"
    [ -x "$partial/helm" ] || die "go install finished but $partial/helm is missing"
    rm -rf "$BIN_DIR"
    mv "$partial" "$BIN_DIR"
    works || die "$HELM does not run"
  fi
fi
printf '%s\n' "$HELM"
