#!/usr/bin/env bash
# Installs the database servers the meter-sink tests run against, when missing:
# Debian's `influxdb` (1.6.7, the 1.x API) and `victoria-metrics` (stands in for
# a 2.x server: it accepts /api/v2/write). Idempotent and quiet; skips when both
# are present. Needs root (or sudo) and apt-get; otherwise the tests report a
# loud skip.
set -euo pipefail
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

have_influxd() { command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ]; }
have_vm() {
    command -v victoria-metrics >/dev/null 2>&1 || command -v victoria-metrics-prod >/dev/null 2>&1 ||
        [ -x /usr/bin/victoria-metrics ] || [ -x /usr/bin/victoria-metrics-prod ]
}

missing=()
have_influxd || missing+=(influxdb)
have_vm || missing+=(victoria-metrics)
[ ${#missing[@]} -eq 0 ] && exit 0

apt_install setup/influxdb.sh "${missing[@]}"
