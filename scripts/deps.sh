#!/bin/sh
# scripts/deps.sh — install the Debian 12 packages ringkv builds, tests and benchmarks with.
#
# Idempotent: asks dpkg which packages are missing and installs only those, non-interactively.
# Prints nothing when everything is present. Needs root only when something is missing.
set -eu

PKGS="build-essential pkg-config make gcc clang llvm libclang-rt-14-dev \
libdpdk-dev dpdk liburing-dev libxxhash-dev libcmocka-dev libzstd-dev \
iproute2 iputils-ping procps psmisc redis-server redis-tools \
libmicrohttpd-dev prometheus curl gnuplot-nox libhiredis-dev python3 python3-redis"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages and not root; run as root: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update >/dev/null
apt-get -qq -y -o Dpkg::Options::=--force-confold install --no-install-recommends $missing >/dev/null
# Redis is only a benchmark peer and Prometheus is installed for promtool (tests check /metrics
# with it): do not leave system daemons running that tests never asked for.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now redis-server >/dev/null 2>&1 || true
	systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
exit 0
