#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need,
# runs every crate's tests, then each area's extra checks in scripts/ci/
# (real-data evaluations run there when ../shared/data exists).
set -euo pipefail
cd "$(dirname "$0")/.."
for setup in scripts/setup/*.sh; do
    [ -e "$setup" ] && bash "$setup"
done
# Where the real data is, a data test that skips is a failure (testkit::data).
if [ -d ../shared/data ]; then
    export METER_REQUIRE_DATA=1
fi
cargo test --workspace --all-targets
for check in scripts/ci/*.sh; do
    [ -e "$check" ] || continue
    echo "== $check"
    bash "$check"
done
