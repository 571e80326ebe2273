#!/usr/bin/env bash
# Issue 4's end-to-end bar: `meter run` reads 1,000 consecutive frames of the
# camera simulator's rolling counter (noise, jitter, rotation, flash
# reflection, a wrap-around past 99999.9) over real HTTP; no wrong value may
# be stored and at least 95% must be. `cargo test` runs a 150-frame version.
set -euo pipefail
cd "$(dirname "$0")/../.."
METER_E2E_FRAMES="${METER_E2E_FRAMES:-1000}" \
    cargo test -p meter-cli --test it -- e2e::rolling_counter_over_http --exact --nocapture
