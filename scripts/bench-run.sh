#!/usr/bin/env bash
# Load test of `meter run`: N simulated meters (default 100), each read once
# per INTERVAL (default 1s), for a while (default 60 s), on this machine's
# cores; with SERVE (`serve`), the config also has a `[serve]` table and a
# client fetches the overview `/` and one meter's `frame.jpg` (the next meter
# each time) once a second, as a person watching the page would. Frames come
# from the camera simulator serving pre-rendered JPEGs (noise, jitter,
# rotation, flash reflection) from a folder, so the simulator's own rendering
# does not compete with the reader. Prints readings per meter, decisions, and
# the reader's CPU use and peak memory (GNU time).
#
#   scripts/bench-run.sh [METERS] [SECONDS] [INTERVAL] [SERVE]
#   scripts/bench-run.sh 2000 180 60s   # the service-library issue's bench
#   scripts/bench-run.sh 100 60 1s serve   # the same with the page served
#
# Uses the release build (as a service would run); NO_BUILD=1 uses the
# binaries in target/release as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
meters="${1:-100}"
seconds="${2:-60}"
interval="${3:-1s}"
serve="${4:-}"
case "$serve" in "" | serve) ;; *) echo "SERVE is \"serve\" or nothing, not \"$serve\"" >&2; exit 2 ;; esac
work="$PWD/target/bench-run"
[ "${NO_BUILD:-}" = 1 ] || cargo build --quiet --release -p meter-cli -p firmware --bins
bin="$PWD/target/release"
rm -rf "$work"
mkdir -p "$work/frames"

# 1. Render 30 frames of a meter standing at 4711.3 (the frames differ in
#    noise, jitter, rotation and reflection; the value does not, so every
#    meter sees a steady value whichever frame it gets).
"$bin/meter-camsim" --port 0 --start 4711.3 --step-per-frame 0 --write-setup "$work/camera" \
    --duration 120 >"$work/render.log" 2>&1 &
render=$!
trap 'kill $render ${camera:-} ${poller:-} 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "^listening on" "$work/render.log" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/render.log")
for i in $(seq -w 1 30); do curl -sf "$url/capture" -o "$work/frames/f$i.jpg"; done
kill $render

# 2. Serve them in a loop.
"$bin/meter-camsim" --port 0 --frames "$work/frames" >"$work/camera.log" 2>&1 &
camera=$!
for _ in $(seq 100); do grep -q "^listening on" "$work/camera.log" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/camera.log")

# 3. N meters reading it once a second.
{
    printf 'state_dir = "state"\ndataset_dir = "dataset"\nunsure_dir = "unsure"\nrejected_dir = "rejected"\n\n'
    for k in $(seq -w 0 $((meters - 1))); do
        sed -e "s/^name = .*/name = \"m$k\"/" -e "s/^interval = .*/interval = \"$interval\"/" \
            -e "s#^source = .*#source = \"$url\"#" "$work/camera/meter.toml"
        echo
    done
    printf '[[sink]]\ntype = "jsonl"\npath = "readings.jsonl"\n'
    if [ -n "$serve" ]; then
        # A free loopback port (the kernel's choice, released for meter run).
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        printf '\n[serve]\nlisten = "127.0.0.1:%s"\n' "$port"
    fi
} >"$work/meter.toml"

# 4. The page's client: the overview and one frame a second, logging each
#    answer's status (000: none within 5 s).
if [ -n "$serve" ]; then
    (
        for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/api/meters" && break; sleep 0.1; done
        k=0 last=$((meters - 1))
        while sleep 1; do
            m=$(printf "m%0${#last}d" $((k % meters)))
            k=$((k + 1))
            for path in / "/api/meters/$m/frame.jpg"; do
                # 000: no answer within 5 s.
                echo "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path") $path"
            done
        done
    ) >"$work/poll.log" 2>&1 &
    poller=$!
fi

echo "== $meters meters at one frame per $interval for ${seconds}s on $(nproc) cores${serve:+, page served and polled once a second}"
RUST_LOG=warn /usr/bin/time -v "$bin/meter" run --config "$work/meter.toml" --duration "${seconds}s" \
    >"$work/out.log" 2>"$work/time.log" || { tail "$work/time.log"; exit 1; }
total=$(wc -l <"$work/out.log")
stored=$(grep -c "status=stored" "$work/out.log" || true)
echo "readings: $total ($(awk -v t="$total" -v s="$seconds" 'BEGIN{printf "%.1f", t/s}') per second), stored: $stored"
grep -E "User time|System time|Percent of CPU|Elapsed|Maximum resident" "$work/time.log"
if [ -n "$serve" ]; then
    kill "$poller" 2>/dev/null || true
    echo "page: $(grep -c '^200 /$' "$work/poll.log" || true) overviews and $(grep -c '^200 .*frame.jpg' "$work/poll.log" || true) frames served;" \
        "not served: $(grep -v '^200 ' "$work/poll.log" | cut -d' ' -f1 | sort | uniq -c | xargs || true)"
fi
