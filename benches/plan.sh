#!/usr/bin/env bash
# Planning cost: `cairn plan` of a generated recipe of N microsteps against one of 100, in the
# same run, with /usr/bin/time -v for wall time and peak memory (max RSS).
#
#   benches/plan.sh [N] [BIN]     (N defaults to 10000; BIN to target/release/cairn, built if missing)
#
# The recipe is shaped like real ones: 20 globals, 4 of them templates that use others; one
# step per 10 microsteps; each microstep two commands using two globals. Planning resolves every
# command and computes every checkpoint ID; nothing runs. Writes nothing outside its temp dir.
set -euo pipefail

N=${1:-10000}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${2:-$repo/target/release/cairn}
[[ -x $BIN ]] || (cd "$repo" && cargo build --release --quiet)
[[ -x /usr/bin/time ]] || { echo "$0: needs GNU time (/usr/bin/time)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gen() {
    local n=$1 out=$2
    {
        echo "global:"
        for g in $(seq 1 16); do echo "  g$g: value-$g"; done
        echo '  t1: "{{g1}}-{{g2}}"'
        echo '  t2: "{{t1}}/{{g3}}"'
        echo '  t3: "{{t2}}:{{g4}}"'
        echo '  rootfs: "{{build_dir}}/rootfs"'
        echo "setup:"
        local i=0
        while (( i < n )); do
            echo "  - s$((i / 10)):"
            local j
            for j in $(seq 0 9); do
                (( i < n )) || break
                echo "    - m$i:"
                echo "      - exec_local: echo {{t3}} $i > /dev/null"
                echo "      - exec_local: test -n \"{{rootfs}}\" && echo {{g$(( (i % 16) + 1 ))}}"
                i=$((i + 1))
            done
        done
    } > "$out"
}

measure() {
    local recipe=$1
    # Warm the page cache, then measure.
    "$BIN" plan "$recipe" -b "$tmp/build" > /dev/null
    /usr/bin/time -v "$BIN" plan "$recipe" -b "$tmp/build" 2>&1 > /dev/null |
        awk -F': ' '/Elapsed \(wall clock\)/ {w=$2} /Maximum resident set size/ {m=$2}
                    END {printf "%s s wall, %.1f MB max RSS\n", w, m/1024}'
}

gen 100 "$tmp/small.yaml"
gen "$N" "$tmp/large.yaml"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "100 microsteps:    $(measure "$tmp/small.yaml")"
echo "$N microsteps:  $(measure "$tmp/large.yaml")"
