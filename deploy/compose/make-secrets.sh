#!/usr/bin/env bash
# Write the secrets compose.yaml mounts, once, into deploy/compose/secrets/:
#   cluster-key             shared by every node (64 hex digits)
#   admin-token             bearer token for Revoke and `peers remove` (64 hex digits)
#   grafana-admin-password  Grafana's admin password (32 hex digits)
# Existing files are kept (a new cluster key would split a running cluster);
# --force writes new ones. The directory is git-ignored; never commit it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/secrets"
force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# N random bytes as hex, from the kernel's CSPRNG (no openssl needed).
rand_hex() { od -An -vtx1 -N "$1" /dev/urandom | tr -d ' \n'; }

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
write() { # name bytes [newline: yes|no]
  local file="$dir/$1"
  if [ -s "$file" ] && [ "$force" = 0 ]; then
    echo "kept    $file"
    return
  fi
  rand_hex "$2" >"$file.tmp"
  if [ "${3:-yes}" = yes ]; then printf '\n' >>"$file.tmp"; fi
  # Compose bind-mounts secret files with their host mode and owner; the
  # containers run as uid 10001 (rescind) and 472 (Grafana), so the files
  # are world-readable and the directory above them is 0700.
  chmod 0644 "$file.tmp"
  mv "$file.tmp" "$file"
  echo "wrote   $file"
}
write cluster-key 32
write admin-token 32
write grafana-admin-password 16 no # Grafana takes a __FILE as written
cat <<MSG

Admin token (for rescind revoke / peers remove):
  export RESCIND_TOKEN=\$(cat "$dir/admin-token")
MSG
