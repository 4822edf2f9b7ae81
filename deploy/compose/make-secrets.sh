#!/usr/bin/env bash
# Write the secrets compose.yaml mounts, once, into deploy/compose/secrets/:
#   cluster-key             shared by every node (64 hex digits)
#   admin-token             bearer token for Revoke and `peers remove` (64 hex digits)
#   grafana-admin-password  Grafana's admin password (32 hex digits)
#   peer-ca.crt, peer.crt, peer.key
#                           the cluster CA and one peer certificate valid for
#                           every node name and host (openssl; the CA key is
#                           kept beside them to issue more, never mounted)
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

# Peer mutual TLS: the nodes listen on 0.0.0.0 and refuse to start without it.
# One certificate for the six nodes keeps this demo short; production issues
# one per node, so that each is bound to its own name.
peer_certs() {
  if [ -s "$dir/peer.crt" ] && [ "$force" = 0 ]; then
    echo "kept    $dir/peer-ca.crt, peer.crt, peer.key"
    return
  fi
  command -v openssl >/dev/null || { echo "error: openssl is needed to make the peer certificates" >&2; exit 1; }
  local tmp sans=""
  tmp=$(mktemp -d)
  for n in eu-1 eu-2 us-1 us-2 ap-1 ap-2; do sans="$sans,DNS:$n,DNS:rescind-$n"; done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=rescind compose cluster CA" -keyout "$dir/peer-ca.key" -out "$tmp/peer-ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=rescind peer" \
    -keyout "$tmp/peer.key" -out "$tmp/peer.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "${sans#,}" >"$tmp/ext"
  openssl x509 -req -in "$tmp/peer.csr" -CA "$tmp/peer-ca.crt" -CAkey "$dir/peer-ca.key" -CAcreateserial \
    -days 825 -extfile "$tmp/ext" -out "$tmp/peer.crt" 2>/dev/null
  chmod 0600 "$dir/peer-ca.key"
  for f in peer-ca.crt peer.crt peer.key; do
    chmod 0644 "$tmp/$f" # read by uid 10001 in the containers; the directory is 0700
    mv "$tmp/$f" "$dir/$f"
    echo "wrote   $dir/$f"
  done
  rm -rf "$tmp"
}
peer_certs
cat <<MSG

Admin token (for rescind revoke / peers remove):
  export RESCIND_TOKEN=\$(cat "$dir/admin-token")
MSG
