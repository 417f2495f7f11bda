#!/usr/bin/env bash
# Installs the servers the tests start on free loopback ports (redis-server, redis-cli,
# memcached) from Debian's packages, when they are missing. Needs root (or sudo).
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
if [ ${#missing[@]} -eq 0 ]; then
  echo "redis-server, redis-cli and memcached are installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# The packages start system services on the default ports; the tests use their own servers.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl stop redis-server memcached >/dev/null 2>&1 || true
fi
