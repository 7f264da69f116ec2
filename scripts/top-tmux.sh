#!/usr/bin/env bash
# tmux for `logferry top`'s interactive test (test/integration/top.test.ts drives the live view in a
# real terminal: start, capture the pane, send q / Ctrl-C). Installed from Debian when missing; a
# failed install fails CI rather than letting that test skip unseen.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
  echo "top: $(tmux -V)"
  exit 0
fi
echo "top: installing tmux (apt)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends tmux >/dev/null
echo "top: $(tmux -V)"
