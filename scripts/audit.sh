#!/usr/bin/env bash
# `npm audit` of the production dependencies: fails on any high or critical advisory. Where the
# registry's audit endpoint cannot be reached (this build machine's mirror answers 405 to the bulk
# advisory POST), it says so and does not fail: an unreachable endpoint is not a clean bill of
# health, and the note makes that visible in the CI log.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(npm audit --omit=dev --audit-level=high --json 2>/dev/null)"
rc=$?
if [ $rc -eq 0 ]; then
  echo "audit: no high or critical advisories in production dependencies"
  exit 0
fi
if printf '%s' "$out" | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    let j; try { j = JSON.parse(s); } catch { process.exit(1); }
    // an endpoint failure has statusCode/error and no advisories
    process.exit(j.metadata === undefined && (j.statusCode !== undefined || j.error !== undefined) ? 0 : 1);
  });'; then
  echo "audit: NOT CHECKED: the registry's audit endpoint is unreachable from here ($(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).message??"no message")}catch{console.log("unreadable answer")}})'))"
  exit 0
fi
echo "audit: high or critical advisories in production dependencies:"
npm audit --omit=dev --audit-level=high || true
exit 1
