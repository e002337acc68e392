#!/usr/bin/env python3
"""asan.report.fuzz: `jobwarden report` (the ASan/UBSan build) on records
made wrong on purpose, never a crash and never a document that breaks its
own schema.

Usage: fuzz.py JOBWARDEN SCHEMA WORK_DIR ROUNDS HOSTILE_DIR SEED_RECORD...

The seeds: the records given, and make_record.py's scenarios (made from
HOSTILE_DIR, the hostile corpus). Each round takes a seed record and damages it: a member anywhere in a
line replaced by a value of another type (null, numbers out of range,
strings with NUL and markup, arrays, objects), processes whose parents
form a cycle or name themselves, entity ids shared by two processes,
seqs repeated or out of order, lines deleted, swapped or duplicated,
bytes flipped, the file cut anywhere. Then, in the three formats:
the exit status is 0 or 1 (1 only when no line is an event), nothing on
stderr from the sanitizers, and for 0: the json document validates
against docs/jobwarden-report.schema.json, the text holds no control
character, and the html's data block, unescaped, is that same document
(its only '</script>' are the page's own two). The first 40 pages then
load in chromium with no error (check_html.py --smoke). Deterministic
(seeded)."""

import json
import os
import random
import subprocess
import sys

import jsonschema

BAD_TEXT = [chr(c) for c in range(0x20) if c != 0x0A] + ["\x7f"] + \
    [chr(c) for c in range(0x80, 0xA0)] + ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                                            "\u2066", "\u2067", "\u2068", "\u2069"]
VALUES = [None, True, 0, -1, 2 ** 63 - 1, -2 ** 63, 4294967296, 1.5, "", "x\u0000y",
          "</script><script>alert(1)</script>", "\u2028\u202e\x1b[2J", [], [1, "a"], {},
          {"pid": "1"}, "2026-13-45T99:99:99.999999Z", "0" * 300]


def paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def set_path(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def mutate(lines, rnd):
    evs = []
    for l in lines:
        try:
            evs.append(json.loads(l))
        except ValueError:
            evs.append(l)
    kind = rnd.randrange(9)
    objs = [e for e in evs if isinstance(e, dict)]
    if kind <= 2 and objs:  # type confusion, one to three members
        for _ in range(1 + kind):
            e = rnd.choice(objs)
            ps = list(paths(e))
            if ps:
                set_path(e, rnd.choice(ps), rnd.choice(VALUES))
    elif kind == 3:  # parent cycles and self-parents
        procs = [e["process"] for e in objs if isinstance(e.get("process"), dict)]
        if len(procs) >= 2:
            a, b = rnd.sample(procs, 2)
            a["parent"] = {"pid": b.get("pid"), "entity_id": b.get("entity_id")}
            b["parent"] = {"pid": a.get("pid"), "entity_id": a.get("entity_id")}
        if procs:
            c = rnd.choice(procs)
            c["parent"] = {"pid": c.get("pid"), "entity_id": c.get("entity_id")}
    elif kind == 4:  # shared entity ids, seqs repeated or reordered
        procs = [e["process"] for e in objs if isinstance(e.get("process"), dict)]
        if len(procs) >= 2:
            rnd.choice(procs)["entity_id"] = rnd.choice(procs).get("entity_id")
        for e in rnd.sample(objs, min(3, len(objs))):
            e["seq"] = rnd.choice([1, 2, 10 ** 12, rnd.randrange(1, 50)])
    elif kind == 5:  # lines deleted, swapped, duplicated
        for _ in range(rnd.randrange(1, 4)):
            i, j = rnd.randrange(len(evs)), rnd.randrange(len(evs))
            op = rnd.randrange(3)
            if op == 0 and len(evs) > 1:
                del evs[i]
            elif op == 1:
                evs[i], evs[j] = evs[j], evs[i]
            else:
                evs.insert(j, evs[i])
    text = "".join((json.dumps(e, separators=(",", ":"), ensure_ascii=rnd.random() < 0.5)
                    if isinstance(e, dict) else str(e)) + "\n" for e in evs).encode("utf-8", "surrogatepass")
    if kind == 6:  # bytes flipped
        b = bytearray(text)
        for _ in range(rnd.randrange(1, 20)):
            if b:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        text = bytes(b)
    elif kind == 7:  # cut anywhere
        text = text[:rnd.randrange(len(text) + 1)]
    elif kind == 8:  # a foreign line in the middle
        parts = text.split(b"\n")
        parts.insert(rnd.randrange(len(parts)), rnd.choice([b"{}", b"[]", b"null", b"\xff\xfe",
                                                            b'{"ecs":{},"event":{}}', b" " * 10]))
        text = b"\n".join(parts)
    return text


def unescape_data(html):
    start = html.index('<script type="application/json" id="jw-data">') + len(
        '<script type="application/json" id="jw-data">')
    end = html.index("</script>", start)
    return html[start:end]


def main():
    jw, schema_path, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_record
    made = os.path.join(work, "seeds")
    make_record.scenarios(made, sys.argv[5])
    files = sys.argv[6:] + [os.path.join(made, f) for f in
                            ("multi-a.jsonl", "rot.jsonl", "incomplete.jsonl", "hostile.jsonl")]
    seeds = [open(p, encoding="utf-8").read().splitlines() for p in files]
    schema = jsonschema.Draft202012Validator(json.load(open(schema_path)))
    os.makedirs(work, exist_ok=True)
    rnd = random.Random(20261202)
    fails, ok, refused = [], 0, 0
    for r in range(rounds):
        rec = os.path.join(work, "r%d.jsonl" % r)
        with open(rec, "wb") as f:
            f.write(mutate(rnd.choice(seeds), rnd))
        outs = {}
        for fmt in ("json", "text", "html"):
            out = os.path.join(work, "r%d.%s" % (r, fmt))
            p = subprocess.run([jw, "report", rec, "--format", fmt, "-o", out],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            err = p.stderr.decode("utf-8", "replace")
            if p.returncode not in (0, 1) or "Sanitizer" in err or "runtime error" in err:
                fails.append("round %d %s: exit %d: %s" % (r, fmt, p.returncode, err[-600:]))
                continue
            outs[fmt] = p.returncode
        if outs.get("json") != 0 or len(set(outs.values())) != 1 or len(outs) != 3:
            if len(set(outs.values())) > 1:
                fails.append("round %d: formats disagree on the exit status: %r" % (r, outs))
            refused += 1
            continue
        doc = json.load(open(os.path.join(work, "r%d.json" % r), encoding="utf-8"))
        for e in list(schema.iter_errors(doc))[:3]:
            fails.append("round %d: schema: %s: %s" % (r, e.json_path, e.message[:150]))
        text = open(os.path.join(work, "r%d.text" % r), encoding="utf-8").read()
        for ch in BAD_TEXT:
            if ch in text:
                fails.append("round %d: text holds U+%04X" % (r, ord(ch)))
        html = open(os.path.join(work, "r%d.html" % r), encoding="utf-8").read()
        if html.count("</script>") != 2:
            fails.append("round %d: html has %d </script>" % (r, html.count("</script>")))
        elif json.loads(unescape_data(html)) != doc:
            fails.append("round %d: the html's data is not the json document" % r)
        ok += 1
    if fails:
        for f in fails[:30]:
            print("fuzz: " + f, file=sys.stderr)
        print("fuzz: %d failure(s) in %d rounds" % (len(fails), rounds), file=sys.stderr)
        return 1
    if ok < rounds // 2:
        print("fuzz: only %d of %d rounds were reported (the mutations are too strong)" % (ok, rounds),
              file=sys.stderr)
        return 1
    print("fuzz: %d rounds: %d reported and checked, %d refused with exit 1" % (rounds, ok, refused))
    # The pages of the first 40 reported rounds in chromium: the page's
    # script draws any document the report writes without an error.
    pages = [os.path.join(work, "r%d.html" % r) for r in range(rounds)
             if os.path.exists(os.path.join(work, "r%d.html" % r))][:40]
    return subprocess.call([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "check_html.py"), "--smoke"] + pages)


if __name__ == "__main__":
    sys.exit(main())
