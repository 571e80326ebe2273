#!/usr/bin/env bash
# Installs headless Chromium and chromedriver for meter-web's browser tests,
# when missing (Debian's `chromium` and `chromium-driver`). Idempotent and
# quiet. Without them the browser tests skip with a loud message (and fail
# when METER_REQUIRE_BROWSER=1).
set -euo pipefail
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0

apt_install setup/chromium.sh "${missing[@]}"
