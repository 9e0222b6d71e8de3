#!/bin/sh
# Runs every fuzz target for SECONDS (default 600) each, in parallel, at the lowest priority,
# seeded with the recipes, steps and drivers in the repository. Crashes land in
# fuzz/artifacts/<target>/; the executions and coverage of each run are in fuzz/logs/<target>.log.
# TARGETS picks targets (a machine with 2 cores runs 2 at a time well); SANITIZER (default
# none: cairn is safe Rust, and without AddressSanitizer a target runs far faster)
# is cargo fuzz's `-s`, e.g. SANITIZER=address.
set -eu
cd "$(dirname "$0")"
secs=${1:-600}
targets=${TARGETS:-"yaml recipe driver dialect template"}
mkdir -p logs
for t in $targets; do
    mkdir -p "corpus/$t"
    case $t in
        driver) seeds="../drivers ../tests/fixtures ../tests/malformed" ;;
        *) seeds="../recipes ../tests/fixtures ../tests/malformed" ;;
    esac
    for d in $seeds; do
        [ -d "$d" ] && find "$d" -name '*.yaml' -size -64k -exec cp {} "corpus/$t/" \; 2>/dev/null || true
    done
done
for t in $targets; do
    nice -n 19 cargo +nightly fuzz run -O -s "${SANITIZER:-none}" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"logs/$t.log" 2>&1 &
done
wait
for t in $targets; do
    printf '%s: ' "$t"
    grep -E '^stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}'
done
