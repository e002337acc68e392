#!/usr/bin/env python3
"""Waits for something to have happened, for tests/syslog/run_rsyslog_test.sh.

  wait_for.py file PATH [TIMEOUT_S]
      until PATH exists; prints its content.
  wait_for.py event JSONL KEY=VALUE... [--timeout S]
      until the JSON Lines file JSONL has a complete line whose fields (dotted
      paths: process.pid, error.where) equal the values (compared as
      strings); prints that event's seq.
  wait_for.py listen PORT [TIMEOUT_S]
      until 127.0.0.1:PORT accepts a TCP connection.

Each polls the condition itself, never a guessed duration; the timeout
(default 30 s) only turns a condition that never comes true into a clear
failure (exit 1, what was awaited on stderr) instead of a hung test.
"""
import json
import socket
import sys
import time


def until(cond, timeout, what):
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got is not None:
            return got
        if time.monotonic() >= end:
            print(f"wait_for.py: gave up after {timeout} s waiting for {what}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.02)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def field(ev, path):
    for key in path.split("."):
        if not isinstance(ev, dict) or key not in ev:
            return None
        ev = ev[key]
    return ev


def find_event(path, want):
    data = read_file(path)
    if data is None:
        return None
    # Only complete lines: a line being written is not an event yet.
    for line in data.split(b"\n")[:-1]:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if all(str(field(ev, k)) == v for k, v in want):
            return ev
    return None


def main(argv):
    if len(argv) >= 2 and argv[0] == "file":
        timeout = float(argv[2]) if len(argv) > 2 else 30.0
        got = until(lambda: read_file(argv[1]), timeout, f"the file {argv[1]}")
        sys.stdout.write(got.decode("utf-8", "replace"))
        return 0
    if len(argv) >= 3 and argv[0] == "event":
        timeout, want = 30.0, []
        rest = argv[2:]
        while rest:
            if rest[0] == "--timeout" and len(rest) > 1:
                timeout = float(rest[1])
                rest = rest[2:]
                continue
            k, sep, v = rest[0].partition("=")
            if not sep:
                print(f"wait_for.py: '{rest[0]}' is not KEY=VALUE", file=sys.stderr)
                return 2
            want.append((k, v))
            rest = rest[1:]
        what = f"an event with {' '.join(f'{k}={v}' for k, v in want)} in {argv[1]}"
        ev = until(lambda: find_event(argv[1], want), timeout, what)
        print(ev.get("seq"))
        return 0
    if len(argv) >= 2 and argv[0] == "listen":
        timeout = float(argv[2]) if len(argv) > 2 else 30.0

        def accepts():
            try:
                socket.create_connection(("127.0.0.1", int(argv[1])), timeout=0.5).close()
                return True
            except OSError:
                return None

        until(accepts, timeout, f"127.0.0.1:{argv[1]} to accept a connection")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
