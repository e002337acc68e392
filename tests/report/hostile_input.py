#!/usr/bin/env python3
"""Writes the input of the helper mode report-mix (tests/win/helpers.h):
the hostile corpus (tests/data/hostile) as UTF-16LE strings, each ended by
a U+0000 unit, and what jobwarden must record for each one.

Usage: hostile_input.py CORPUS_DIR OUT.bin OUT.json

Cases of the `executable` field whose units hold no U+0000 (a command
line cannot) and that fit a command line (at most 4000 units) are taken;
their `expected` file is the JSON string jobwarden writes for those units
(lone surrogates as U+FFFD...). Strings aimed at an HTML page follow, the
same as in make_record.py. OUT.json: {"strings": [recorded string, ...]}
in the order of OUT.bin."""

import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_record import MARKUP  # noqa: E402


def units_of(path):
    units, field = [], "executable"
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        w = line.split()
        if w[0] == "field":
            field = w[1]
        elif w[0] == "truncated":
            pass
        elif w[0] == "repeat":
            units += [int(w[1], 16)] * int(w[2])
        elif w[0] == "bytes":
            return None, "message"
        else:
            units += [int(x, 16) for x in (w[1:] if w[0] == "units" else w)]
    return units, field


def main():
    corpus, out_bin, out_json = sys.argv[1:4]
    blob, recorded = b"", []
    for case in open(os.path.join(corpus, "INDEX")).read().split("\n"):
        case = case.strip()
        if not case or case.startswith("#"):
            continue
        units, field = units_of(os.path.join(corpus, case, "input"))
        if field != "executable" or units is None or 0 in units or len(units) > 4000:
            continue
        expected = json.loads(open(os.path.join(corpus, case, "expected"), encoding="utf-8").read())
        blob += struct.pack("<%dH" % len(units), *units) + b"\0\0"
        recorded.append(expected)
    for s in MARKUP:
        blob += s.encode("utf-16-le") + b"\0\0"
        recorded.append(s)
    open(out_bin, "wb").write(blob)
    json.dump({"strings": recorded}, open(out_json, "w"), ensure_ascii=True)
    print("hostile_input: %d strings" % len(recorded))


if __name__ == "__main__":
    main()
