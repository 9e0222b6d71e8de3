#!/usr/bin/env bash
# Checkpoint create and apply through cairn for the copy, hardlink and reflink drivers, against
# plain copies of the same tree, all on one loop-mounted XFS made with `mkfs.xfs -m reflink=1`.
#
#   benches/drivers.sh [REPS]      (REPS defaults to 5; run from the repo root, as root)
#
# Every repetition runs all drivers and baselines in turn (plus one unrecorded warm-up
# repetition first), so load from other work on the machine falls on all of them alike.
#
# Tree: FILES files (default 20000) in 200 directories (20 x 10), sizes 1-8 KiB, plus BIG
# (default 20) files of 1 MiB; pseudo-random content from a fixed seed: about 110 MiB of data, 145 MiB on disk.
#
# For each driver and repetition, from scratch (fresh rootfs copied with --reflink=never, empty
# store and build dir, `sync`), a recipe with `checkpoint: <driver>` and two microsteps
#     first:  true
#     change: sync; echo x >> {{rootfs}}/d00/s0/f00000
# is built with `cairn build -c --json`; the `checkpoint_created` durations give
#     create 1  (full tree)    and    create 2  (after a one-file change).
# Then the rootfs is made to diverge (one file appended to, one file added) and
#     apply     `cairn build -c -F setup/bench/change`
# is timed from the `checkpoint_apply_start` event to the next `microstep_start` (the driver's
# `apply` and restarting the context shells); then the rootfs is deleted and
#     apply (no target)  the same into a missing rootfs.
# After each apply the rootfs is compared with the expected tree (diff -r).
# Space: the filesystem's used blocks after both checkpoints minus before (counts shared
# extents and hard links once, unlike du).
# Baselines, each a copy of the tree to a fresh directory after `sync`:
#     cp -a           coreutils' default, which since 9.0 is --reflink=auto: a clone on XFS
#     cp -a --reflink=never    a full byte copy
#     rsync -a        what the hardlink driver ran before `cairn snapshot-tree`
#     cp -al          hard links to every file: the floor for any hard-link checkpoint
set -euo pipefail

REPS=${1:-5}
FILES=${FILES:-20000}
BIG=${BIG:-20}
IMG_SIZE=${IMG_SIZE:-4G}
if ! [[ $REPS =~ ^[0-9]+$ ]] || (( REPS < 1 )); then
    echo "usage: $0 [REPS>=1]" >&2
    exit 2
fi
if (( EUID != 0 )); then
    echo "$0: must run as root (it loop-mounts an XFS image)" >&2
    exit 2
fi

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
for tool in jq python3 rsync mkfs.xfs losetup mount umount diff awk; do
    command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 2; }
done
if [[ ! -x target/release/cairn ]]; then
    echo "building target/release/cairn ..." >&2
    cargo build --release >&2
fi

tmp="" loopdev="" mnt=""
cleanup() {
    local rc=$?
    set +e
    cd /
    if [[ -n $mnt ]] && mountpoint -q "$mnt"; then
        umount "$mnt" || { sleep 1; umount "$mnt"; } || umount -l "$mnt"
    fi
    [[ -n $loopdev ]] && losetup -d "$loopdev"
    [[ -n $tmp ]] && rm -rf -- "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-drivers.XXXXXX")
# A private copy of the binary: other people's rebuilds of target/ cannot swap it mid-run.
cp target/release/cairn "$tmp/cairn"
cairn="$tmp/cairn"
export CAIRN_DRIVER_PATH="$repo/drivers"

truncate -s "$IMG_SIZE" "$tmp/xfs.img"
mkfs.xfs -q -m reflink=1 "$tmp/xfs.img"
loopdev=$(losetup --find --show "$tmp/xfs.img")
mnt="$tmp/mnt"
mkdir "$mnt"
mount "$loopdev" "$mnt"
log() { echo "[$(date +%T)] $*" >&2; }
log "XFS (reflink=1) on $loopdev mounted at $mnt"

# ---- the tree ----
python3 - "$mnt/tree" "$FILES" "$BIG" <<'EOF'
import os, random, sys
root, files, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20240601)
pool = rng.randbytes(4 << 20)
dirs = [os.path.join(root, f"d{a:02d}", f"s{b}") for a in range(20) for b in range(10)]
for d in dirs:
    os.makedirs(d)
for i in range(files):
    size = rng.randint(1024, 8192)
    off = rng.randrange(len(pool) - size)
    with open(os.path.join(dirs[i % len(dirs)], f"f{i:05d}"), "wb") as f:
        f.write(pool[off:off + size])
for i in range(big):
    off = rng.randrange(len(pool) - (1 << 20))
    with open(os.path.join(dirs[(i * 7) % len(dirs)], f"big{i:02d}.bin"), "wb") as f:
        f.write(pool[off:off + (1 << 20)])
EOF
sync
tree_files=$(find "$mnt/tree" -type f | wc -l)
tree_mib=$(du -sm "$mnt/tree" | cut -f1)
log "tree: $tree_files files, $tree_mib MiB"

changed="d00/s0/f00000"
used_kib() { sync; df -k --output=used "$mnt" | tail -1 | tr -d ' '; }
stamp() { local line; while IFS= read -r line; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done; }
# The seconds between the checkpoint_apply_start event and the next microstep_start in a
# stamped log.
apply_secs() {
    awk -F'\t' '
        index($2, "\"event\":\"checkpoint_apply_start\"") { t = $1 }
        t != "" && index($2, "\"event\":\"microstep_start\"") { printf "%.6f\n", $1 - t; exit }
    ' "$1"
}
created_secs() { # created_secs LOG SLUG
    cut -f2- "$1" | jq -r --arg s "$2" 'select(.event == "checkpoint_created" and .slug == $s) | .duration'
}
check_tree() { # check_tree ROOTFS: the source tree plus the one-line change, nothing else
    local out
    out=$(diff -rq "$mnt/tree" "$1" || true)
    if [[ $out != "Files $mnt/tree/$changed and $1/$changed differ" ]]; then
        echo "$0: after apply, $1 is not the checkpointed tree:" >&2
        echo "$out" | head -5 >&2
        exit 1
    fi
}

results="$tmp/results.tsv"
: >"$results"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; }

for driver in copy hardlink reflink; do
    cat >"$tmp/bench-$driver.yaml" <<EOF
# generated by benches/drivers.sh
checkpoint: $driver
global:
  rootfs: "$mnt/rootfs-$driver"
  store: "$mnt/store-$driver"
setup:
  - bench:
      - first:
          - exec_local: "true"
      - change:
          - exec_local: sync; echo x >> "{{rootfs}}/$changed"
EOF
done

bench_driver() { # bench_driver DRIVER: one repetition
    local driver=$1 recipe="$tmp/bench-$1.yaml" rootfs="$mnt/rootfs-$1" store="$mnt/store-$1" bd="$mnt/build-$1"
    local before c1 c2 a1 a2 space
    rm -rf "$rootfs" "$store" "$bd"
    cp -a --reflink=never "$mnt/tree" "$rootfs"
    before=$(used_kib)

    "$cairn" --no-color build -c -y -b "$bd" "$recipe" --json | stamp >"$tmp/build.log"
    c1=$(created_secs "$tmp/build.log" setup/bench/first)
    c2=$(created_secs "$tmp/build.log" setup/bench/change)
    [[ -n $c1 && -n $c2 ]] || { echo "$0: $driver: no checkpoint_created events" >&2; cat "$tmp/build.log" >&2; exit 1; }
    space=$(($(used_kib) - before))

    # Diverge (as a failed later step would), then go back to the second checkpoint.
    echo y >>"$rootfs/d05/s5/f00055"
    echo new >"$rootfs/d07/s7/new-file"
    sync
    "$cairn" --no-color build -c -y -b "$bd" -F setup/bench/change "$recipe" --json | stamp >"$tmp/apply.log"
    a1=$(apply_secs "$tmp/apply.log")
    check_tree "$rootfs"

    rm -rf "$rootfs"
    sync
    "$cairn" --no-color build -c -y -b "$bd" -F setup/bench/change "$recipe" --json | stamp >"$tmp/apply2.log"
    a2=$(apply_secs "$tmp/apply2.log")
    [[ -n $a1 && -n $a2 ]] || { echo "$0: $driver: no checkpoint_applied events" >&2; exit 1; }
    check_tree "$rootfs"
    rm -rf "$rootfs" "$store" "$bd"

    record "$driver" create1 "$c1"
    record "$driver" create2 "$c2"
    record "$driver" apply "$a1"
    record "$driver" apply_empty "$a2"
    record "$driver" space_mib "$(awk -v k="$space" 'BEGIN { printf "%.1f", k / 1024 }')"
    log "$driver: create1 ${c1}s create2 ${c2}s apply ${a1}s apply(no target) ${a2}s space $((space / 1024)) MiB"
}

bench_copy() { # bench_copy NAME COMMAND...: one timed copy of the tree to a fresh directory
    local name=$1 dst="$mnt/copy-dst" t0 t1
    shift
    rm -rf "$dst"
    sync
    t0=$EPOCHREALTIME
    "$@" "$mnt/tree" "$dst"
    t1=$EPOCHREALTIME
    rm -rf "$dst"
    record "$name" copy "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')"
    log "$name: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')s"
}
rsync_copy() { rsync -a "$1/" "$2/"; }

# Repetitions outermost, so that drift in the machine's load falls on every subject alike.
# Repetition 0 is a warm-up and is not recorded.
results_all="$results"
for ((rep = 0; rep <= REPS; rep++)); do
    if ((rep == 0)); then results="$tmp/warmup.tsv"; else results="$results_all"; fi
    log "repetition $rep$( ((rep)) || echo ' (warm-up, not recorded)')"
    for driver in copy hardlink reflink; do
        bench_driver "$driver"
    done
    bench_copy "cp -a" cp -a
    bench_copy "cp -a --reflink=never" cp -a --reflink=never
    bench_copy "rsync -a" rsync_copy
    bench_copy "cp -al" cp -al
done
results="$results_all"

# ---- report ----
# mean, sample sd and min of each (subject, metric)
stats() {
    awk -F'\t' -v subj="$1" -v metric="$2" '
        $1 == subj && $2 == metric { n++; s += $3; ss += $3 * $3; if (n == 1 || $3 < min) min = $3 }
        END {
            if (n == 0) { print "-"; exit }
            m = s / n; v = n > 1 ? (ss - n * m * m) / (n - 1) : 0; if (v < 0) v = 0
            printf "%s %s %s\n", m, sqrt(v), min
        }' "$results"
}
fmt() { # fmt SUBJECT METRIC -> "1.234 ± 0.010"
    stats "$1" "$2" | awk '$1 == "-" { print "-"; next } { printf "%.3f ± %.3f", $1, $2 }'
}
mean_of() { stats "$1" "$2" | awk '{ print $1 }'; }

echo
echo "tree: $tree_files files, $tree_mib MiB; XFS reflink=1 on a loop device; $REPS repetitions;" \
    "$(nproc) cores; load average at start $load_start; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "kernel $(uname -r); $(cp --version | head -1); $(rsync --version | head -1 | awk '{ print "rsync", $3 }')"
table() { # table TITLE FORMATTER
    echo "$1"
    printf '%-22s %18s %18s %18s %18s %10s\n' "" "create 1 (full)" "create 2 (1 file)" "apply" "apply (no target)" "space MiB"
    for d in copy hardlink reflink; do
        printf '%-22s %18s %18s %18s %18s %10s\n' "$d" "$($2 $d create1)" "$($2 $d create2)" \
            "$($2 $d apply)" "$($2 $d apply_empty)" "$(mean_of $d space_mib | awk '{ printf "%.0f", $1 }')"
    done
    for b in "cp -a" "cp -a --reflink=never" "rsync -a" "cp -al"; do
        printf '%-22s %18s\n' "$b" "$($2 "$b" copy)"
    done
}
min3() { stats "$1" "$2" | awk '{ printf "%.3f", $3 }'; }
table "seconds, mean ± sd over $REPS runs" fmt
echo
table "seconds, minimum over $REPS runs (less sensitive to other work on the machine)" min3
verdict() { # verdict STAT-COLUMN LABEL
    local col=$1
    awk -v h="$(stats hardlink create2 | cut -d' ' -f"$col")" -v a="$(stats "cp -a" copy | cut -d' ' -f"$col")" \
        -v n="$(stats "cp -a --reflink=never" copy | cut -d' ' -f"$col")" -v label="$2" 'BEGIN {
        ra = 100 * h / a; rn = 100 * h / n
        printf "hardlink checkpoint after a one-file change (%s): %.3f s = %.0f%% of cp -a (%.3f s), %.0f%% of cp -a --reflink=never (%.3f s); target <= 30%%: %s / %s\n",
            label, h, ra, a, rn, n, (ra <= 30 ? "met" : "NOT met"), (rn <= 30 ? "met" : "NOT met")
    }'
}
echo
verdict 1 means
verdict 3 minima
