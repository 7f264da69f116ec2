# Shared by the scripts in scripts/ (sourced, never run): messages and running as a service user.
# The sourcing script sets LOG_NAME first.

log() { printf '%s: %s\n' "$LOG_NAME" "$*" >&2; }
die() {
  log "$*"
  exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# as_user USER CMD...: CMD as USER when we are root (Elasticsearch and OpenSearch refuse to start as
# root), as ourselves otherwise.
as_user() {
  local user="$1"
  shift
  if is_root; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}
