#!/usr/bin/env bash
# Kameleon parity: every recipe of a library resolved by Kameleon's own code and by cairn, and
# the two resolved plans diffed command by command. Opt-in, not run in CI; it downloads and
# builds nothing.
#
#   benches/kameleon-parity/run.sh KAMELEON_SRC LIBRARY [OUT_DIR]
#
# KAMELEON_SRC  a source checkout of Kameleon (https://github.com/oar-team/kameleon); its lib/
#               is loaded by kameleon_plan.rb. Needs ruby and the Debian packages ruby-thor,
#               ruby-childprocess, ruby-table-print, ruby-graphviz, ruby-progressbar.
# LIBRARY       a recipe library (oar-team/kameleon-recipes, grid5000/environments-recipes).
#               Recipes are found as `kameleon list` finds them: every .yaml outside steps/ and
#               .steps/, filtered by the library's .filter regex when it has one.
# OUT_DIR       where the dumps and the report go (default: a new temp dir).
# CAIRN         the cairn binary (default: target/debug/cairn of this checkout, else `cairn`).
# JOBS          recipes resolved at once (default 1; the machine is shared).
# CAIRN_ARGS    more arguments for cairn (e.g. `--dialect kameleon`).
# REUSE=1       keep Kameleon's dumps already in OUT_DIR (they change only with Kameleon or the
#               library) and redo cairn's.
#
# Both tools run from LIBRARY with the recipe named relative to it, one build path, and the same
# pinned `kameleon_uuid`/`kameleon_short_uuid`, so paths and UUIDs agree without guessing;
# compare.py then replaces LIBRARY and the build path by <LIB> and <BUILD>, and Kameleon's
# `@microstep_id` by cairn's `{{checkpoint_id}}`, and writes OUT_DIR/report.txt.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 2 ] || { sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 2; }
ksrc=$(cd "$1" && pwd)
lib=$(cd "$2" && pwd)
out=${3:-$(mktemp -d /tmp/kameleon-parity.XXXXXX)}
mkdir -p "$out/kameleon" "$out/cairn"
out=$(cd "$out" && pwd)
if [ -z "${CAIRN:-}" ]; then
  if [ -x "$here/../../target/debug/cairn" ]; then CAIRN=$here/../../target/debug/cairn; else CAIRN=cairn; fi
fi
# A copy, so a rebuild during the run does not mix two versions in one report.
if [ -f "$CAIRN" ]; then cp "$CAIRN" "$out/cairn-under-test"; CAIRN=$out/cairn-under-test; fi
jobs=${JOBS:-1}
build=$out/build
uuid=0badc0de-0000-4000-8000-5ca1ab1e0001
short=${uuid##*-}

filter=""
[ -f "$lib/.filter" ] && filter=$(head -n1 "$lib/.filter")
(cd "$lib" && find . -name '*.yaml' -not -path '*/steps/*' -not -path '*/.steps/*' \
  | sed 's|^\./||' | sort \
  | { if [ -n "$filter" ]; then grep -E "$filter" || true; else cat; fi; }) >"$out/recipes.txt"

one() {
  local recipe=$1 key name
  key=$(printf '%s' "$recipe" | tr '/' '~')
  name=$(basename "$recipe" .yaml)
  [ "${REUSE:-}" = 1 ] && [ -s "$out/kameleon/$key.json" ] ||
  (cd "$lib" && ruby "$here/kameleon_plan.rb" "$ksrc" "$build" "$recipe" \
      "kameleon_uuid:$uuid" "kameleon_short_uuid:$short" \
      >"$out/kameleon/$key.json" 2>"$out/kameleon/$key.log") || true
  # shellcheck disable=SC2086
  (cd "$lib" && "$CAIRN" --no-color ${CAIRN_ARGS:-} plan "$recipe" --json --commands -b "$build/$name" \
      -g "kameleon_uuid=$uuid" -g "kameleon_short_uuid=$short" \
      >"$out/cairn/$key.jsonl" 2>"$out/cairn/$key.log") || true
}
export -f one
export lib ksrc out build uuid short here CAIRN CAIRN_ARGS
xargs -a "$out/recipes.txt" -P "$jobs" -I{} bash -c 'one "$@"' _ {}

python3 "$here/compare.py" "$out" "$lib" "$build" | tee "$out/report.txt"
echo "dumps and report: $out" >&2
