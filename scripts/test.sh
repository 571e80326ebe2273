#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need,
# then every crate's tests. Real-data checks run when ../shared/data exists.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
