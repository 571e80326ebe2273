#!/usr/bin/env bash
# The main job on an embedded default, on a fresh machine: builds meter-reader,
# starts the camera simulator (an ESP32-CAM look-alike serving a rolling
# six-digit counter over HTTP on a loopback port), and reads it with the
# shipped model every 2 seconds for a minute, printing each reading and
# storing it into local files (JSON lines and CSV).
#
#   scripts/demo.sh                 # one minute
#   DEMO_SECONDS=10 scripts/demo.sh # shorter
#   DEMO_WEB_PORT=8091 scripts/demo.sh # the web page on another port
#
# While it reads, the web page (`[serve]`) is on http://127.0.0.1:8090/.
# Everything is written under target/demo/ (removed and recreated each run).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${DEMO_SECONDS:-60}"
web_port="${DEMO_WEB_PORT:-8090}"
demo="$PWD/target/demo"

command -v cargo >/dev/null || { echo "demo.sh: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
echo "== building (dev profile; the first build takes a few minutes)"
cargo build --quiet -p meter-cli -p firmware --bins
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug"

rm -rf "$demo"
mkdir -p "$demo"
echo "== starting the camera simulator"
# 150 kWh per hour: the last roller turns every 2.4 s, the units roll every 24 s.
"$bin/meter-camsim" --port 0 --rate-per-hour 150 --write-setup "$demo/camera" \
    --duration $((seconds + 30)) >"$demo/camsim.log" 2>&1 &
camsim=$!
trap 'kill "$camsim" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "^listening on" "$demo/camsim.log" && break
    kill -0 "$camsim" 2>/dev/null || { cat "$demo/camsim.log" >&2; exit 1; }
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$demo/camsim.log")
echo "   $url (GET /capture, /status, /control; the set-up is in $demo/camera)"

# The config: the simulator's [[meter]] table (marks, digit boxes, decimals)
# read every 2 s, plus local folders and two file sinks.
{
    cat <<TOML
# Written by scripts/demo.sh.
state_dir = "state"
dataset_dir = "dataset"
unsure_dir = "unsure"
rejected_dir = "rejected"

[model]
min_confidence = 0.95

# The web page, on this machine only.
[serve]
listen = "127.0.0.1:${web_port}"

TOML
    sed 's/^interval = .*/interval = "2s"\nmax_rate_per_hour = 1000.0/' "$demo/camera/meter.toml"
    cat <<TOML

[[sink]]
type = "jsonl"
path = "readings.jsonl"

[[sink]]
type = "csv"
path = "readings.csv"
TOML
} >"$demo/meter.toml"

echo "== reading the meter for ${seconds} s: meter run --config $demo/meter.toml"
echo "   the web page: http://127.0.0.1:${web_port}/ (overview, history, labelling, box editor)"
RUST_LOG="${RUST_LOG:-warn}" "$bin/meter" run --config "$demo/meter.toml" --duration "${seconds}s"

stored=$(grep -c '"kind":"stored"' "$demo/readings.jsonl" || true)
total=$(wc -l <"$demo/readings.jsonl")
echo "== done: $stored of $total readings stored"
echo "   readings: $demo/readings.jsonl and $demo/readings.csv"
echo "   state:    $demo/state/camsim.json (the last value survives restarts)"
echo "   training: $demo/dataset/<label>/ (digits of stored readings), $demo/unsure/"
