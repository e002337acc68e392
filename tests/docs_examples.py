#!/usr/bin/env python3
"""Every example event in docs/events.md validates against the published
schema: the documentation cannot show an event jobwarden would not write.
Every example part record (continuation records) validates against the
JSON Schema events.md gives for them, and the parts put together are the
line they name: `bytes` long, of BLAKE2b-128 `digest`, no record longer
than its `limit`.

usage: docs_examples.py SCHEMA EVENTS_MD --expect N [--expect-parts M]

Each line of a ```json block that is a whole JSON object with an "event"
key is an example event (fragments such as a bare "process_tree" array are
skipped; sandbox.log_continued lines are not events); one with a
"jobwarden_part" key is a part record. Fails when fewer than N examples
(M part records) are found, so that a moved block cannot make the test
vacuous."""
import hashlib
import json
import re
import sys

import jsonschema

PART_SCHEMA_AFTER = "As a JSON Schema (the records are not events"


def check_parts(text, parts):
    """The part records' failures, one line each."""
    failed = []
    at = text.find(PART_SCHEMA_AFTER)
    block = re.search(r"```text\n(.*?)```", text[at:], re.S) if at >= 0 else None
    if block is None:
        return ["no JSON Schema for part records after %r" % PART_SCHEMA_AFTER]
    validator = jsonschema.Draft202012Validator(json.loads(block.group(1)))
    lines = {}
    for raw, record in parts:
        for error in validator.iter_errors(record):
            failed.append("part record: %s at %s" % (error.message[:300],
                                                      "/".join(map(str, error.absolute_path))))
        p = record.get("jobwarden_part", {})
        if len(raw.encode("utf-8")) > p.get("limit", 0):
            failed.append("part %s: %d bytes, over its limit %s" %
                          (p.get("n"), len(raw.encode("utf-8")), p.get("limit")))
        key = (p.get("run_id"), p.get("seq"), p.get("digest"), p.get("limit"))
        lines.setdefault(key, {})[p.get("n")] = p
    for key, got in lines.items():
        of = next(iter(got.values())).get("of")
        if sorted(got) != list(range(1, (of or 0) + 1)):
            failed.append("run %s seq %s: parts %s of %s" % (key[0], key[1], sorted(got), of))
            continue
        line = "".join(got[n]["data"] for n in sorted(got)).encode("utf-8")
        if len(line) != got[1]["bytes"]:
            failed.append("run %s seq %s: %d bytes put together, not %s" %
                          (key[0], key[1], len(line), got[1]["bytes"]))
        if hashlib.blake2b(line, digest_size=16).hexdigest() != key[2]:
            failed.append("run %s seq %s: put together, not the line of digest %s" %
                          (key[0], key[1], key[2]))
    return failed


def main(argv):
    args = dict(zip(argv[3::2], argv[4::2]))
    if len(argv) not in (5, 7) or "--expect" not in args or \
            set(args) - {"--expect", "--expect-parts"}:
        print(__doc__, file=sys.stderr)
        return 2
    schema = json.load(open(argv[1], encoding="utf-8"))
    text = open(argv[2], encoding="utf-8").read()
    validator = jsonschema.Draft202012Validator(schema)
    checked = failed = 0
    parts = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        for line in block.strip().split("\n"):
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if "jobwarden_part" in event:
                parts.append((line, event))
                continue
            if event.get("event") in (None, "sandbox.log_continued"):
                continue
            checked += 1
            for error in validator.iter_errors(event):
                failed += 1
                print("%s seq %s: %s at %s" % (event["event"], event.get("seq"),
                                                error.message[:300],
                                                "/".join(map(str, error.absolute_path))))
    part_failures = check_parts(text, parts) if parts else []
    for line in part_failures:
        print(line)
    print("%d example event(s) checked, %d error(s); %d example part record(s) checked, %d "
          "error(s)" % (checked, failed, len(parts), len(part_failures)))
    if checked < int(args["--expect"]):
        print("expected at least %s examples" % args["--expect"])
        return 1
    if len(parts) < int(args.get("--expect-parts", 0)):
        print("expected at least %s example part records" % args["--expect-parts"])
        return 1
    return 1 if failed or part_failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
