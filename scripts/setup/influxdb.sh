#!/usr/bin/env bash
# Installs the database servers the meter-sink tests run against, when missing:
# Debian's `influxdb` (1.6.7, the 1.x API) and `victoria-metrics` (stands in for
# a 2.x server: it accepts /api/v2/write). Idempotent and quiet; skips when both
# are present. Needs root (or sudo) and apt-get; otherwise the tests report a
# loud skip.
set -euo pipefail

have_influxd() { command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ]; }
have_vm() {
    command -v victoria-metrics >/dev/null 2>&1 || command -v victoria-metrics-prod >/dev/null 2>&1 ||
        [ -x /usr/bin/victoria-metrics ] || [ -x /usr/bin/victoria-metrics-prod ]
}

missing=()
have_influxd || missing+=(influxdb)
have_vm || missing+=(victoria-metrics)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup/influxdb.sh: apt-get not found; cannot install ${missing[*]} (meter-sink server tests will be skipped)" >&2
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        echo "setup/influxdb.sh: not root and no sudo; cannot install ${missing[*]}" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup/influxdb.sh: installing ${missing[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${sudo[@]}" apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
# --no-install-recommends: the servers only; policy-rc.d keeps the packages'
# own services from starting (the tests start private instances).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ] && [ ${#sudo[@]} -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
status=0
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 || {
    status=$?
    cat "$log" >&2
}
[ "$created_policy" -eq 1 ] && rm -f "$policy"
exit "$status"
