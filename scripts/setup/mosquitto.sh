#!/usr/bin/env bash
# Installs what the meter-sink MQTT tests run against, when missing: Debian's
# `mosquitto` (the broker and mosquitto_passwd), `mosquitto-clients`
# (mosquitto_sub/pub, handy for looking at what the sink publishes) and
# `openssl` (the TLS test's certificates). Idempotent and quiet; skips when
# present.
set -euo pipefail
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
{ have mosquitto && have mosquitto_passwd; } || missing+=(mosquitto)
have mosquitto_sub || missing+=(mosquitto-clients)
have openssl || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
apt_install setup/mosquitto.sh "${missing[@]}"
