#!/usr/bin/env bash
# How long `cairn report`'s page takes to open in a browser, for a build of 10,000 microsteps
# against recipes/hello.yaml (8 microsteps, built twice) as the baseline, in the same run.
#
#   benches/report.sh [REPS]       (REPS defaults to 5; run from the repo root)
#
# Builds both recipes in a temp dir with the release binary (the 10,000-microstep build takes
# a minute or so), writes each report, then opens each page REPS times in a fresh headless
# Chromium profile with --dump-dom. Two numbers per open: the page's own clock
# (performance.now() once everything is drawn, counted from the start of navigation: reading
# the file, parsing its data, building the DOM and drawing the canvases) and the wall time of
# the whole chromium process (dominated by the browser's own start-up).
#
# Needs chromium. Writes nothing outside its temp dir (plus target/ if it has to build).
set -euo pipefail

REPS=${1:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
command -v chromium >/dev/null || { echo "$0: needs chromium" >&2; exit 2; }
# CAIRN=path picks another binary (the page, not the binary, is what is measured).
bin=${CAIRN:-target/release/cairn}
[[ -n ${CAIRN:-} || -x $bin ]] || cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$bin" "$tmp/cairn"
cairn="$tmp/cairn"

echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
cp -r recipes "$tmp/recipes"
"$cairn" build "$tmp/recipes/hello.yaml" -b "$tmp/hello" -c -y >/dev/null
sed -i 's/greeting: "Hello from/greeting: "Hi from/' "$tmp/recipes/hello.yaml"
"$cairn" build "$tmp/recipes/hello.yaml" -b "$tmp/hello" -c -y >/dev/null
"$cairn" report "$tmp/recipes/hello.yaml" -b "$tmp/hello" -o "$tmp/hello.html" >/dev/null

{
    echo "setup:"
    for s in $(seq 0 99); do
        echo "  - step$s:"
        for m in $(seq 0 99); do
            printf '      - m%s:\n          - exec_local: "true"\n' "$m"
        done
    done
} >"$tmp/big.yaml"
"$cairn" build "$tmp/big.yaml" -b "$tmp/big" -y >/dev/null
"$cairn" report "$tmp/big.yaml" -b "$tmp/big" -o "$tmp/big.html" >/dev/null

printf '%-8s %10s %12s %10s\n' page bytes page_ms wall_s
for page in hello big; do
    for _ in $(seq "$REPS"); do
        rm -rf "$tmp/profile"
        start=$(date +%s.%N)
        ms=$(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --user-data-dir="$tmp/profile" --dump-dom "file://$tmp/$page.html" 2>/dev/null |
            grep -o 'data-open-ms="[^"]*"' | cut -d'"' -f2)
        end=$(date +%s.%N)
        printf '%-8s %10s %12s %10.2f\n' "$page" "$(stat -c %s "$tmp/$page.html")" "${ms:-?}" \
            "$(echo "$end - $start" | bc)"
    done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
