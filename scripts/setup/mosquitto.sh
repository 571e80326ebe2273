#!/usr/bin/env bash
# Installs the MQTT broker the meter-sink tests run against, when missing:
# Debian's `mosquitto` (the broker and mosquitto_passwd) and
# `mosquitto-clients` (mosquitto_sub/pub, handy for looking at what the sink
# publishes), and `openssl` (the TLS test's certificates). Idempotent and
# quiet; skips when present. Needs root (or sudo) and apt-get; otherwise the
# tests report a loud skip.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
{ have mosquitto && have mosquitto_passwd; } || missing+=(mosquitto)
have mosquitto_sub || missing+=(mosquitto-clients)
# The mqtts:// test makes its certificates with it.
have openssl || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup/mosquitto.sh: apt-get not found; cannot install ${missing[*]} (meter-sink MQTT tests will be skipped)" >&2
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        echo "setup/mosquitto.sh: not root and no sudo; cannot install ${missing[*]}" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup/mosquitto.sh: installing ${missing[*]}" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${sudo[@]}" apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
# --no-install-recommends: the broker only; policy-rc.d keeps the package's
# own service from starting (the tests start private instances).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
        "${sudo[@]}" chmod +x "$policy" && created_policy=1
fi
status=0
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 || {
    status=$?
    cat "$log" >&2
}
[ "$created_policy" -eq 1 ] && "${sudo[@]}" rm -f "$policy"
exit "$status"
