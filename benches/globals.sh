#!/usr/bin/env bash
# Loading cost of many globals: `cairn plan` of a recipe with N globals against one with N/10,
# in the same run, to show that loading grows linearly (the YAML mapping load was O(n²) before:
# issue 11 measured 6.7 s for 40,000 globals). Wall time and peak memory come from
# bash and /usr/bin/time; each size is measured REPS times and the fastest run is kept.
#
#   benches/globals.sh [N] [REPS] [BIN]   (N: 40000; REPS: 5; BIN: target/release/cairn)
#
# Every global is a plain scalar (`gI: value-I`), one microstep uses two of them: what is
# measured is reading, checking and resolving the globals, since nothing runs. Writes nothing
# outside its temp dir.
set -euo pipefail

N=${1:-40000}
REPS=${2:-5}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${3:-$repo/target/release/cairn}
[[ -x $BIN ]] || (cd "$repo" && cargo build --release --quiet)
[[ -x /usr/bin/time ]] || { echo "$0: needs GNU time (/usr/bin/time)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A private copy: a rebuild by someone else mid-run cannot swap the binary.
cp "$BIN" "$tmp/cairn"

gen() {
    local n=$1 out=$2
    {
        echo "global:"
        seq 1 "$n" | sed 's/.*/  g&: value-&/'
        echo "setup:"
        echo "  - s:"
        echo "    - m:"
        echo "      - exec_local: echo {{g1}} {{g$n}}"
    } > "$out"
}

# Prints "SECONDS MB" for the fastest of REPS runs (wall time from bash's EPOCHREALTIME, which
# has microseconds; /usr/bin/time's has hundredths).
measure() {
    local recipe=$1 best="" t0 t1
    "$tmp/cairn" plan "$recipe" -b "$tmp/build" > /dev/null # warm the page cache
    for _ in $(seq 1 "$REPS"); do
        t0=$EPOCHREALTIME
        /usr/bin/time -f '%M' -o "$tmp/rss" "$tmp/cairn" plan "$recipe" -b "$tmp/build" > /dev/null
        t1=$EPOCHREALTIME
        best=$(printf '%s\n%s %s\n' "$best" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
            "$(cat "$tmp/rss")" | sed '/^$/d' | sort -n | head -1)
    done
    awk '{printf "%s s wall, %.1f MB max RSS\n", $1, $2/1024}' <<< "$best"
}

small=$((N / 10))
gen "$small" "$tmp/small.yaml"
gen "$N" "$tmp/large.yaml"
echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
s=$(measure "$tmp/small.yaml")
l=$(measure "$tmp/large.yaml")
echo "$small globals: $s"
echo "$N globals: $l"
awk -v s="${s%% *}" -v l="${l%% *}" 'BEGIN {
    if (s > 0) printf "ratio: %.1f for 10 times the globals (linear: 10, quadratic: 100)\n", l / s
}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
