#!/usr/bin/env bash
# Real-frame checks of meter-vision (issue 3), when ../shared/data/meter-frames
# exists: each origin's config translated into ours must crop within 3 px of
# the origin's aligned frame, every truncated JPEG in wmsc must be detected,
# and the auto-ROI hit rate is printed. Then `meter roi` is run on a real
# upside-down frame with a config, as a user would.
set -euo pipefail
cd "$(dirname "$0")/../.."
frames="${METER_FRAMES_DIR:-../shared/data/meter-frames}"
if [ ! -d "$frames" ]; then
    echo "vision.sh: $frames not present, real-frame checks skipped"
    exit 0
fi
frames="$(cd "$frames" && pwd)"
cargo test -q -p meter-vision --test it real_frames -- --nocapture --test-threads 1 2>&1 \
    | grep -E "(wmsc|wmic|aoe2020|auto)[ /:].*(px|right|WRONG|detected)|test result|panicked|FAILED"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
w="$frames/wmsc"
cat > "$tmp/meter.toml" <<TOML
[[meter]]
name = "wmsc"
source = "$w/org.jpg"
rotate = 180
marks = [
  { image = "$w/Ref_ZR_x99_y219.jpg", x = 99, y = 219 },
  { image = "$w/Ref_m3_x512_y117.jpg", x = 512, y = 117 },
  { image = "$w/Ref_x0_x301_y386.jpg", x = 301, y = 386 },
]
digits = [[215, 97, 42, 75], [273, 97, 42, 75], [332, 97, 42, 75], [390, 97, 42, 75], [446, 97, 42, 75]]
TOML
cargo run -q -p meter-cli --bin meter -- roi --frame "$w/org.jpg" --config "$tmp/meter.toml" --out "$tmp/roi"
for f in aligned.png digit_0.png digit_4.png; do
    [ -s "$tmp/roi/$f" ] || { echo "vision.sh: meter roi did not write $f"; exit 1; }
done
# A truncated frame must be refused with an error naming it.
if out="$(cargo run -q -p meter-cli --bin meter -- roi --frame "$w/SourceImage_2020-06-19_11-03-42__7de5f70.jpg" --config "$tmp/meter.toml" --out "$tmp/bad" 2>&1)"; then
    echo "vision.sh: a truncated JPEG was accepted"; exit 1
fi
echo "$out" | grep -q "corrupt JPEG" || { echo "vision.sh: unexpected error: $out"; exit 1; }
echo "vision.sh: meter roi on real frames OK"
