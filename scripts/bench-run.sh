#!/usr/bin/env bash
# Load test of `meter run`: N simulated meters (default 100), each read once
# per INTERVAL (default 1s), for a while (default 60 s), on this machine's
# cores. Frames come
# from the camera simulator serving pre-rendered JPEGs (noise, jitter,
# rotation, flash reflection) from a folder, so the simulator's own rendering
# does not compete with the reader. Prints readings per meter, decisions, and
# the reader's CPU use and peak memory (GNU time).
#
#   scripts/bench-run.sh [METERS] [SECONDS] [INTERVAL]
#   scripts/bench-run.sh 2000 180 60s   # the service-library issue's bench
#
# Uses the release build (as a service would run).
set -euo pipefail
cd "$(dirname "$0")/.."
meters="${1:-100}"
seconds="${2:-60}"
interval="${3:-1s}"
work="$PWD/target/bench-run"
cargo build --quiet --release -p meter-cli -p firmware --bins
bin="$PWD/target/release"
rm -rf "$work"
mkdir -p "$work/frames"

# 1. Render 30 frames of a meter standing at 4711.3 (the frames differ in
#    noise, jitter, rotation and reflection; the value does not, so every
#    meter sees a steady value whichever frame it gets).
"$bin/meter-camsim" --port 0 --start 4711.3 --step-per-frame 0 --write-setup "$work/camera" \
    --duration 120 >"$work/render.log" 2>&1 &
render=$!
trap 'kill $render ${serve:-} 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "^listening on" "$work/render.log" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/render.log")
for i in $(seq -w 1 30); do curl -sf "$url/capture" -o "$work/frames/f$i.jpg"; done
kill $render

# 2. Serve them in a loop.
"$bin/meter-camsim" --port 0 --frames "$work/frames" >"$work/serve.log" 2>&1 &
serve=$!
for _ in $(seq 100); do grep -q "^listening on" "$work/serve.log" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.log")

# 3. N meters reading it once a second.
{
    printf 'state_dir = "state"\ndataset_dir = "dataset"\nunsure_dir = "unsure"\nrejected_dir = "rejected"\n\n'
    for k in $(seq -w 0 $((meters - 1))); do
        sed -e "s/^name = .*/name = \"m$k\"/" -e "s/^interval = .*/interval = \"$interval\"/" \
            -e "s#^source = .*#source = \"$url\"#" "$work/camera/meter.toml"
        echo
    done
    printf '[[sink]]\ntype = "jsonl"\npath = "readings.jsonl"\n'
} >"$work/meter.toml"

echo "== $meters meters at one frame per $interval for ${seconds}s on $(nproc) cores"
RUST_LOG=warn /usr/bin/time -v "$bin/meter" run --config "$work/meter.toml" --duration "${seconds}s" \
    >"$work/out.log" 2>"$work/time.log" || { tail "$work/time.log"; exit 1; }
total=$(wc -l <"$work/out.log")
stored=$(grep -c "status=stored" "$work/out.log" || true)
echo "readings: $total ($(awk -v t="$total" -v s="$seconds" 'BEGIN{printf "%.1f", t/s}') per second), stored: $stored"
grep -E "User time|System time|Percent of CPU|Elapsed|Maximum resident" "$work/time.log"
