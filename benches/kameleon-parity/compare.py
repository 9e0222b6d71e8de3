#!/usr/bin/env python3
"""Diffs the plans run.sh dumped: OUT/kameleon/*.json (kameleon_plan.rb) against
OUT/cairn/*.jsonl (`cairn plan --json --commands`). Prints the counts docs/kameleon.md records,
then every difference grouped by the microstep it is in, most widespread first.

    compare.py OUT LIBRARY BUILD_PATH
"""
import collections
import difflib
import json
import os
import re
import sys

out, lib, build = sys.argv[1:4]


def spelled(path):
    """`path`, or the same with any word of it printed as *** (cairn redacts a secret's value,
    `root_password: grid5000` say, wherever it appears)."""
    parts = re.split(r"([A-Za-z0-9]+)", path)
    return re.compile("".join(f"(?:{re.escape(p)}|\\*\\*\\*)" if p.isalnum() else re.escape(p)
                              for p in parts if p))


BUILD_RE, LIB_RE = spelled(build), spelled(lib)


def norm(v):
    if isinstance(v, str):
        return LIB_RE.sub("<LIB>", BUILD_RE.sub("<BUILD>", v))
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def load_kameleon(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        return None, f"no output ({e.__class__.__name__})"
    if "error" in d:
        return None, d["error"].splitlines()[0] if d["error"] else "error"
    driver = d.get("driver")
    if driver is not None:
        driver = json.loads(json.dumps(driver).replace("@microstep_id", "{{checkpoint_id}}"))
    return {"microsteps": [(m["slug"], m["commands"]) for m in d["microsteps"]],
            "driver": driver}, None


def load_cairn(path, log):
    micro, driver = [], None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                # docs/json.md: plan --commands writes plan_commands, then plan_driver.
                if d.get("event") == "plan_driver":
                    driver = d["operations"]
                elif d.get("event") == "plan_commands":
                    micro.append((d["slug"], d["commands"]))
                elif d.get("event") == "error" and not micro:
                    msg = d.get("message") or "error"
                    return None, "error: " + msg.splitlines()[0]
    except (OSError, ValueError) as e:
        return None, f"bad output ({e})"
    if not micro:
        try:
            with open(log) as f:
                first = next((l.strip() for l in f if l.strip()), "no output")
        except OSError:
            first = "no output"
        return None, first
    return {"microsteps": micro, "driver": driver}, None


def lines(cmds):
    return json.dumps(cmds, indent=1, ensure_ascii=False, sort_keys=True).splitlines()


def strings_of(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from strings_of(x)
    elif isinstance(v, dict):
        for _, x in sorted(v.items()):
            yield from strings_of(x)


def redacted(printed, value):
    """Whether `printed` is `value` with some of it replaced by ***."""
    if "***" not in printed:
        return False
    return re.fullmatch(".*?".join(re.escape(p) for p in printed.split("***")), value,
                        re.S) is not None


def same_but_hook_aliases(k, c):
    """Equal, except where Kameleon skips an alias standing for a hook inside test/group
    ("Unknown command") and cairn runs its commands (a group)."""
    if isinstance(k, dict) and isinstance(c, dict):
        if k.get("kind") == "unknown" and str(k.get("key", "")).startswith("on_"):
            return c.get("kind") == "group"
        if set(k) != set(c):
            return False
        return all(same_but_hook_aliases(k[x], c[x]) for x in k)
    if isinstance(k, list) and isinstance(c, list):
        return len(k) == len(c) and all(same_but_hook_aliases(a, b) for a, b in zip(k, c))
    return k == c


def unredact(k, c):
    """`c` with every string that is a redacted spelling of the matching string of `k`
    replaced by it (same structure only)."""
    if isinstance(c, str):
        return k if isinstance(k, str) and redacted(c, k) else c
    if isinstance(c, list) and isinstance(k, list) and len(c) == len(k):
        return [unredact(a, b) for a, b in zip(k, c)]
    if isinstance(c, dict) and isinstance(k, dict):
        return {x: unredact(k[x], v) if x in k else v for x, v in c.items()}
    return c


def known_difference(kcmds, ccmds):
    """The reasons, all listed in docs/kameleon.md, that explain why a microstep's commands
    differ; None when they do not explain it."""
    reasons = []
    dashes = json.loads(json.dumps(ccmds).replace("---", ""))
    if json.dumps(kcmds).count("---") < json.dumps(ccmds).count("---"):
        reasons.append("Kameleon deletes every --- in a command")
        ccmds = dashes
    if ccmds == kcmds:
        return reasons
    # cairn prints a secret's value (a variable named like a password) as ***: take
    # Kameleon's text wherever cairn's is it with *** in places.
    if "***" in json.dumps(ccmds):
        unredacted = unredact(kcmds, ccmds)
        if unredacted != ccmds:
            reasons.append("secret values printed as *** by cairn plan (they run as written)")
            ccmds = unredacted
            if ccmds == kcmds:
                return reasons
    if same_but_hook_aliases(kcmds, ccmds):
        return reasons + ["an alias standing for a hook inside test/group: Kameleon skips it, "
                          "cairn runs it"]
    spaces = lambda t: re.sub(r" {2,}", " ", t)
    if len(ks) == len(cs) and all(spaces(a) == spaces(b) for a, b in zip(ks, cs)):
        return reasons + ["whitespace Kameleon's YAML round trip folds (an empty variable at a "
                          "line fold)"]
    return None


known = collections.defaultdict(set)
recipes = [r.strip() for r in open(os.path.join(out, "recipes.txt")) if r.strip()]
count = collections.Counter()
kerr, cerr = collections.Counter(), collections.Counter()
only = {"kameleon": [], "cairn": []}
by_place = collections.defaultdict(list)  # (step/microstep, diff text) -> recipes
slug_diffs = []
for r in recipes:
    key = r.replace("/", "~")
    k, ke = load_kameleon(os.path.join(out, "kameleon", key + ".json"))
    c, ce = load_cairn(os.path.join(out, "cairn", key + ".jsonl"),
                       os.path.join(out, "cairn", key + ".log"))
    count["recipes"] += 1
    if k:
        count["kameleon resolves"] += 1
    else:
        kerr[ke] += 1
    if c:
        count["cairn resolves"] += 1
    else:
        cerr[ce] += 1
    if k and not c:
        only["kameleon"].append(f"{r}: {ce}")
    if c and not k:
        only["cairn"].append(f"{r}: {ke}")
    if not (k and c):
        continue
    count["both resolve"] += 1
    k, c = norm(k), norm(c)
    ks = [s for s, _ in k["microsteps"]]
    cs = [s for s, _ in c["microsteps"]]
    if len(ks) == len(cs) and ks != cs and all(a == b or redacted(b, a) for a, b in zip(ks, cs)):
        # A slug holding a secret's value is printed with *** too: take Kameleon's spelling.
        known["secret values printed as *** by cairn plan (they run as written)"].add(r)
        c["microsteps"] = [(a, cmds) for a, (_, cmds) in zip(ks, c["microsteps"])]
        cs = ks
    if ks == cs:
        count["microstep lists equal"] += 1
    else:
        d = list(difflib.unified_diff(ks, cs, "kameleon", "cairn", n=1, lineterm=""))
        slug_diffs.append((r, d))
    kc = dict(k["microsteps"])
    same = True
    explained = True
    for slug, cmds in c["microsteps"]:
        if slug not in kc or kc[slug] == cmds:
            continue
        same = False
        why = known_difference(kc[slug], cmds)
        if why:
            for reason in why:
                known[reason].add(r)
            continue
        explained = False
        d = "\n".join(difflib.unified_diff(lines(kc[slug]), lines(cmds), "kameleon", "cairn",
                                           n=2, lineterm=""))
        place = slug.split("/", 1)[1]
        by_place[(place, d)].append(r)
    if k["driver"] != c["driver"]:
        same = False
        why = known_difference(k["driver"], c["driver"])
        if why:
            for reason in why:
                known[reason].add(r)
        else:
            explained = False
            d = "\n".join(difflib.unified_diff(lines(k["driver"]), lines(c["driver"]),
                                               "kameleon", "cairn", n=2, lineterm=""))
            by_place[("(driver)", d)].append(r)
    if same and ks == cs:
        count["commands identical"] += 1
    if explained and ks == cs:
        count["identical but for the listed differences"] += 1

print("== counts")
for name in ["recipes", "kameleon resolves", "cairn resolves", "both resolve",
             "microstep lists equal", "commands identical",
             "identical but for the listed differences"]:
    print(f"{name}: {count[name]}")
print("\n== listed differences (docs/kameleon.md), recipes affected")
for why, rs in sorted(known.items(), key=lambda x: -len(x[1])):
    print(f"{len(rs):4} {why}")
print("\n== Kameleon errors")
for e, n in kerr.most_common():
    print(f"{n:4} {e}")
print("\n== cairn errors")
for e, n in cerr.most_common():
    print(f"{n:4} {e}")
for tool in ["kameleon", "cairn"]:
    if only[tool]:
        print(f"\n== resolved by {tool} only")
        for line in only[tool]:
            print("  " + line)
if slug_diffs:
    print("\n== microstep lists that differ")
    for r, d in slug_diffs:
        print(f"-- {r}")
        print("\n".join(d))
places = collections.Counter()
for (place, _), rs in by_place.items():
    places[place] += len(rs)
print("\n== command differences by microstep (recipes affected)")
for place, n in places.most_common():
    print(f"{n:4} {place}")
print("\n== command differences, most widespread first")
for (place, d), rs in sorted(by_place.items(), key=lambda x: -len(x[1])):
    print(f"\n-- {place}: {len(rs)} recipe(s), e.g. {rs[0]}")
    print(d)
