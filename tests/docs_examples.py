#!/usr/bin/env python3
"""Every example event in docs/events.md validates against the published
schema: the documentation cannot show an event jobwarden would not write.

usage: docs_examples.py SCHEMA EVENTS_MD --expect N

Each line of a ```json block that is a whole JSON object with an "event"
key is an example event (fragments such as a bare "process_tree" array are
skipped; sandbox.log_continued lines are not events). Fails when fewer than
N examples are found, so that a moved block cannot make the test vacuous."""
import json
import re
import sys

import jsonschema


def main(argv):
    if len(argv) != 5 or argv[3] != "--expect":
        print(__doc__, file=sys.stderr)
        return 2
    schema = json.load(open(argv[1], encoding="utf-8"))
    text = open(argv[2], encoding="utf-8").read()
    validator = jsonschema.Draft202012Validator(schema)
    checked = failed = 0
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        for line in block.strip().split("\n"):
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") in (None, "sandbox.log_continued"):
                continue
            checked += 1
            for error in validator.iter_errors(event):
                failed += 1
                print("%s seq %s: %s at %s" % (event["event"], event.get("seq"),
                                                error.message[:300],
                                                "/".join(map(str, error.absolute_path))))
    print("%d example event(s) checked, %d error(s)" % (checked, failed))
    if checked < int(argv[4]):
        print("expected at least %s examples" % argv[4])
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
