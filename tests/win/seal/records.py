#!/usr/bin/env python3
"""wine.seal.records: every sealed record the suite's real runs wrote
verifies with its key, by the native jobwarden.

usage: records.py NATIVE_JOBWARDEN EVENTS_DIR --expect N [--unended GLOB]...
                  [--schema VERIFY_SCHEMA]

The test kit seals every run of jobwarden.exe it starts (a key of its own,
<prefix><tag>.seal.key; tests/win/helpers.c). Here every event file of
EVENTS_DIR (*.jsonl and rotated parts *.jsonl.N) that holds a sealed line is
matched to its key by the key_id its chain states, the files of one key
are verified together (a rotated stream spans files), and the verdict must
be `intact`. Files of runs whose jobwarden was killed on purpose (--unended,
the same globs as the schema test) must be damaged in one way only:
`truncated`. Every document verify prints is validated against
docs/jobwarden-verify.schema.json (--schema). Fails when fewer than N sealed files are found (so that a
change that stops sealing cannot make the test vacuous), when a sealed
file's key is missing, or on any other verdict."""
import fnmatch
import json
import os
import re
import subprocess
import sys

EVENT_FILE = re.compile(r"\.jsonl(\.[0-9]+)?$")
KEY_ID = re.compile(r'"seal":\{"v":1,"alg":"blake2b-256","key_id":"([0-9a-f]{32})"')


def main(argv):
    if len(argv) < 5 or argv[3] != "--expect":
        print(__doc__, file=sys.stderr)
        return 2
    native, events, expect = argv[1], argv[2], int(argv[4])
    unended = []
    validator = None
    rest = argv[5:]
    while rest:
        if rest[0] not in ("--unended", "--schema") or len(rest) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        if rest[0] == "--schema":
            import jsonschema
            validator = jsonschema.Draft202012Validator(json.load(open(rest[1], encoding="utf-8")))
        else:
            unended.append(rest[1])
        rest = rest[2:]
    if not os.access(native, os.X_OK):
        print(f"wine.seal.records: the native jobwarden ({native}) is not built", file=sys.stderr)
        return 1
    keys = {}  # key files anywhere under EVENTS_DIR (a test may keep its own folder)
    for top, _dirs, names in sorted(os.walk(events)):
        for name in sorted(names):
            if name.endswith(".key"):
                try:
                    doc = json.loads(open(os.path.join(top, name), encoding="utf-8").read())
                    keys[doc["key_id"]] = os.path.join(top, name)
                except (ValueError, KeyError, OSError):
                    pass
    by_key = {}
    problems = []
    sealed = 0
    for name in sorted(os.listdir(events)):
        if not EVENT_FILE.search(name):
            continue
        path = os.path.join(events, name)
        ids = set()
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                ids.update(KEY_ID.findall(line))
        if not ids:
            continue
        sealed += 1
        for key_id in ids:
            if key_id not in keys:
                problems.append(f"{name}: sealed with key {key_id}, no key file has it")
                continue
            by_key.setdefault(key_id, []).append(name)
    for key_id, names in sorted(by_key.items()):
        cmd = [native, "verify"] + [os.path.join(events, n) for n in names]
        cmd += ["--key", keys[key_id], "--json"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        try:
            doc = json.loads(run.stdout)
        except ValueError:
            problems.append(f"{' '.join(names)}: verify printed no JSON (exit {run.returncode}): "
                            f"{run.stderr.strip()}")
            continue
        if validator is not None:
            for err in validator.iter_errors(doc):
                problems.append(f"{' '.join(names)}: verify's document breaks its schema at "
                                f"{'/'.join(str(p) for p in err.absolute_path)}: {err.message}")
        for stream in doc["streams"]:
            files = [os.path.basename(f) for f in stream.get("files", [])]
            allowed = any(fnmatch.fnmatch(f, g) for f in files for g in unended)
            kinds = sorted({d["kind"] for d in stream.get("damage", [])})
            if stream["verdict"] == "intact":
                continue
            if allowed and kinds == ["truncated"]:
                continue
            problems.append(f"{', '.join(files) or '?'} (run {stream.get('run_id')}, stream "
                            f"{stream.get('stream')}): {stream['verdict']}: "
                            + "; ".join(f"{d['kind']} at {d.get('line', '?')}: {d['detail']}"
                                        for d in stream.get("damage", [])[:3]))
    for p in problems:
        print("wine.seal.records: " + p)
    print(f"wine.seal.records: {sealed} sealed file(s), {len(by_key)} key(s), "
          f"{len(problems)} problem(s)")
    if sealed < expect:
        print(f"wine.seal.records: expected at least {expect} sealed files")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
