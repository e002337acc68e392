#!/usr/bin/python3
"""Validates jobwarden event files against the published JSON Schema.

usage: validate_events.py SCHEMA FILE_OR_DIR... [--expect N] [--unended GLOB]...

Every line of every file (a directory stands for its *.jsonl files and
their rotated parts *.jsonl.N, not recursively) must be a JSON object that
the schema accepts (Draft 2020-12, with format checking), and within each
file the seq of each run_id must start at 1 and grow by exactly 1. A file
written after a rotation may start with one sandbox.log_continued line: the
seq of its run then starts at continues_at_seq, and the next line must be
an event of that run (a continuation line anywhere else, or alone, is an
error). A sandbox.telemetry_gap line stands in for the lines a sink lost:
its gap must cover exactly from the expected seq to its own seq (= to_seq).
Also refused: an empty file, a last line
without its newline (a torn write), invalid UTF-8, duplicate keys, NaN or
Infinity, strings holding lone surrogates, an exit_code_hex or entity_id
that disagrees with exit_code or pid, a limit block of another rule than
the event's. The record of each run must hold together in time (schema
2.0.0: @timestamp is when it happened, emitted when it was written):
@timestamp <= emitted; job_start at or before, job_end at or after every
other event of its run; a process's events not before its process_start,
a child's start not before its parent's. sandbox.job_end must be the last
line of its run in its file, and a run that has a job_start must have a
job_end in the files checked together, except in the files named by
--unended GLOB (repeatable): the streams of tests that kill jobwarden
itself on purpose, which end where it died. --expect N fails when fewer
than N files were checked.

This is the independent validator the design asks for: it shares no code
with jobwarden (Python's json and jsonschema, not jansson). Run it with
Debian's /usr/bin/python3, which has python3-jsonschema.

Prints file:line: problem for every problem, then one summary line; exits 0
when everything is valid, 1 otherwise, 2 on usage errors.
"""

import datetime
import fnmatch
import json
import os
import re
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write("validate_events: python3-jsonschema is not installed "
                     "(apt-get install python3-jsonschema)\n")
    sys.exit(2)

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"([Zz]|[+-]\d{2}:\d{2})$")


def make_format_checker():
    """jsonschema checks "date-time" only when rfc3339-validator is
    installed (Debian bookworm does not install it): add a checker of our
    own then, so that the format is really checked, calendar included."""
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        @checker.checks("date-time", raises=ValueError)
        def is_datetime(value):  # pylint: disable=unused-variable
            if not isinstance(value, str):
                return True
            m = RFC3339.match(value)
            if not m:
                raise ValueError("not an RFC 3339 date-time")
            year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
            # Leap seconds (:60) are valid RFC 3339 but never written here.
            datetime.datetime(year, month, day, hour, minute, second)
            return True
    return checker


def reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %r" % key)
        obj[key] = value
    return obj


def find_surrogate(value, path="$"):
    """Path of the first string holding a lone surrogate (from a \\udXXX
    escape that strict UTF-8 consumers cannot decode), or None."""
    if isinstance(value, str):
        for ch in value:
            if 0xD800 <= ord(ch) <= 0xDFFF:
                return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_surrogate(key, path) or find_surrogate(item, path + "." + key)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = find_surrogate(item, "%s[%d]" % (path, i))
            if found:
                return found
    return None


def semantic_problems(event):
    """Consistency the schema language cannot express."""
    problems = []
    process = event.get("process")
    if isinstance(process, dict):
        code = process.get("exit_code")
        hexa = process.get("exit_code_hex")
        if isinstance(code, int) and isinstance(hexa, str) and hexa != "0x%08X" % code:
            problems.append("process.exit_code_hex %s does not match exit_code %d"
                            % (hexa, code))
        entity = process.get("entity_id")
        pid = process.get("pid")
        if isinstance(entity, str) and isinstance(pid, int) and \
                not entity.startswith("%d-" % pid):
            problems.append("process.entity_id %s does not start with pid %d"
                            % (entity, pid))
    limit = event.get("limit")
    if isinstance(limit, dict) and limit.get("name") != event.get("rule"):
        problems.append("limit block %r on an event of rule %r: every rule has its own limit "
                        "or none" % (limit.get("name"), event.get("rule")))
    return problems


def timeline_problems(events):
    """events: [(line, event)] of one run in one file, in file order.
    Yields (line, problem) for a record that does not hold together in
    time. Times are RFC 3339 with a fixed width, so text order is time
    order."""
    def when(event):
        value = event.get("@timestamp")
        return value if isinstance(value, str) else None

    def entity(event, *path):
        value = event
        for key in ("process",) + path + ("entity_id",):
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, str) else None

    end_line = None
    first = last = None
    starts = {}
    for line, event in events:
        kind = event.get("event")
        stamp, emitted = when(event), event.get("emitted")
        if stamp and isinstance(emitted, str) and stamp > emitted:
            yield line, "@timestamp %s is after emitted %s" % (stamp, emitted)
        if end_line is not None:
            yield line, "an event of the run follows its sandbox.job_end (line %d)" % end_line
        if kind == "sandbox.job_end":
            end_line = line
            last = (line, stamp)
        if kind == "sandbox.job_start" and first is None:
            first = (line, stamp)
        if kind == "sandbox.process_start" and stamp and entity(event):
            starts.setdefault(entity(event), (line, stamp))
    for line, event in events:
        stamp = when(event)
        if not stamp or event.get("event") in ("sandbox.telemetry_gap", "sandbox.job_start"):
            continue
        if first and first[1] and stamp < first[1]:
            yield line, "@timestamp %s is before the run's job_start (%s, line %d)" % (
                stamp, first[1], first[0])
        if last and last[1] and stamp > last[1]:
            yield line, "@timestamp %s is after the run's job_end (%s, line %d)" % (
                stamp, last[1], last[0])
        own = entity(event)
        if own in starts and stamp < starts[own][1]:
            yield line, "@timestamp %s of %s is before its process_start (%s, line %d)" % (
                stamp, own, starts[own][1], starts[own][0])
        parent = entity(event, "parent")
        if event.get("event") == "sandbox.process_start" and parent in starts and \
                stamp < starts[parent][1]:
            yield line, "process %s starts at %s, before its parent %s (%s, line %d)" % (
                own, stamp, parent, starts[parent][1], starts[parent][0])


EVENT_FILE = re.compile(r"\.jsonl(\.[0-9]+)?$")
CONTINUED = "sandbox.log_continued"


def collect(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(sorted(os.path.join(path, name) for name in os.listdir(path)
                                if EVENT_FILE.search(name)
                                and os.path.isfile(os.path.join(path, name))))
        elif os.path.exists(path):
            files.append(path)
    return files


def error_path(error):
    return "$" + "".join("[%d]" % p if isinstance(p, int) else ".%s" % p
                         for p in error.absolute_path)


def check_file(path, validator, report, ends=None):
    """Returns (lines, runs) and calls report(line_no, text) per problem.
    ends (a dict run_id -> [started, ended]) collects, across files,
    whether each run has its job_start and its job_end."""
    if ends is None:
        ends = {}
    by_run = {}
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        report(0, "cannot read: %s" % exc.strerror)
        return 0, 0
    if not data:
        report(0, "empty file (no event)")
        return 0, 0
    if not data.endswith(b"\n"):
        report(data.count(b"\n") + 1, "last line has no newline (torn write)")
    next_seq = {}
    pending = None  # (run_id, seq) announced by a continuation line
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            report(number, "invalid UTF-8 at byte %d" % exc.start)
            continue
        if text.endswith("\r"):
            report(number, "carriage return before the newline")
            text = text[:-1]
        try:
            event = json.loads(text, parse_constant=reject_constant,
                               object_pairs_hook=no_duplicates)
        except ValueError as exc:
            report(number, "not JSON: %s" % exc)
            continue
        if not isinstance(event, dict):
            report(number, "not a JSON object")
            continue
        surrogate = find_surrogate(event)
        if surrogate:
            report(number, "%s: string holds a lone surrogate" % surrogate)
        for error in sorted(validator.iter_errors(event),
                            key=lambda e: list(e.absolute_path)):
            report(number, "%s: %s" % (error_path(error), error.message))
        for problem in semantic_problems(event):
            report(number, problem)
        run = event.get("run_id")
        seq = event.get("seq")
        if isinstance(run, str) and event.get("event") != CONTINUED:
            by_run.setdefault(run, []).append((number, event))
            mark = ends.setdefault(run, [None, False])
            if event.get("event") == "sandbox.job_start":
                mark[0] = number
            if event.get("event") == "sandbox.job_end":
                mark[1] = True
        if event.get("event") == CONTINUED:
            if number != 1:
                report(number, "%s is only allowed as the first line of a file" % CONTINUED)
            at = event.get("continues_at_seq")
            if number == 1 and isinstance(run, str) and isinstance(at, int) \
                    and not isinstance(at, bool):
                next_seq[run] = at
                pending = (run, at)
            continue
        if pending is not None:
            if run != pending[0]:
                report(number, "%s announced run %s, the next event is of run %s"
                       % (CONTINUED, pending[0], run))
            pending = None
        if isinstance(run, str) and isinstance(seq, int) and not isinstance(seq, bool):
            want = next_seq.get(run, 1)
            gap = event.get("gap") if event.get("event") == "sandbox.telemetry_gap" else None
            # port_message_lost is the monitor's record of job messages the
            # port did not deliver: an ordinary line of the stream.
            if isinstance(gap, dict) and gap.get("reason") != "port_message_lost":
                # A gap record stands in for the lines it names: it must
                # start where the stream broke off and carry seq = to_seq.
                if gap.get("from_seq") != want or gap.get("to_seq") != seq or \
                        gap.get("count") != seq - want + 1:
                    report(number, "telemetry_gap %r does not cover seq %d..%d exactly"
                           % (gap, want, seq))
            elif seq != want:
                report(number, "seq %d in run %s, expected %d (%s)"
                       % (seq, run, want, "gap: events lost" if seq > want
                          else "repeated or out of order"))
            next_seq[run] = seq + 1
    if pending is not None:
        report(len(lines), "%s is not followed by any event" % CONTINUED)
    for events in by_run.values():
        for line, problem in timeline_problems(events):
            report(line, problem)
    return len(lines), len(next_seq)


def main(argv):
    args = []
    expect = None
    unended = []
    i = 1
    while i < len(argv):
        if argv[i] == "--unended":
            if i + 1 >= len(argv):
                sys.stderr.write("validate_events: --unended needs a file name pattern\n")
                return 2
            unended.append(argv[i + 1])
            i += 2
            continue
        if argv[i] == "--expect":
            if i + 1 >= len(argv) or not argv[i + 1].isdigit():
                sys.stderr.write("validate_events: --expect needs a number\n")
                return 2
            expect = int(argv[i + 1])
            i += 2
            continue
        args.append(argv[i])
        i += 1
    if len(args) < 2:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2

    schema_path, targets = args[0], args[1:]
    try:
        with open(schema_path, "rb") as handle:
            schema = json.loads(handle.read().decode("utf-8"))
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as exc:
        sys.stderr.write("validate_events: bad schema %s: %s\n" % (schema_path, exc))
        return 2
    validator = Draft202012Validator(schema, format_checker=make_format_checker())

    problems = []
    total_lines = total_runs = 0
    files = collect(targets)
    ends = {}
    started_in = {}
    for path in files:
        def report(line, text, path=path):
            problems.append("%s:%d: %s" % (path, line, text))
        before = {run: mark[0] for run, mark in ends.items()}
        lines, runs = check_file(path, validator, report, ends)
        for run, mark in ends.items():
            if mark[0] is not None and before.get(run) is None:
                started_in[run] = "%s:%d" % (path, mark[0])
        total_lines += lines
        total_runs += runs
    for run, mark in sorted(ends.items()):
        where = started_in.get(run, "?")
        if any(fnmatch.fnmatch(os.path.basename(where.rsplit(":", 1)[0]), pattern)
               for pattern in unended):
            continue
        if mark[0] is not None and not mark[1]:
            problems.append("%s: run %s has a sandbox.job_start and no sandbox.job_end"
                            % (started_in.get(run, "?"), run))
    for path in targets:
        if not os.path.exists(path):
            problems.append("%s:0: no such file or directory" % path)
    if expect is not None and len(files) < expect:
        problems.append("%d event file(s) found, at least %d expected"
                        % (len(files), expect))

    for problem in problems:
        sys.stderr.write(problem + "\n")
    status = "OK" if not problems else "%d problem(s)" % len(problems)
    print("validate_events: %d file(s), %d line(s), %d run(s): %s"
          % (len(files), total_lines, total_runs, status))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
