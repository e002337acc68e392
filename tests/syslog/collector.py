#!/usr/bin/env python3
"""A syslog-over-TCP collector for the spool tests (tests/syslog/run_spool_test.sh).

  collector.py recv  PORT_FILE OUT [PORT]
                                      accepts connections on 127.0.0.1 (a free
                                      port, written to PORT_FILE once
                                      listening), reads RFC 6587 octet-counted
                                      frames and appends each message's JSON
                                      (from its first '{') as one line to OUT.
  collector.py stall PORT_FILE OUT    accepts connections but reads nothing
                                      (a receive buffer of 4 KiB) until it
                                      gets SIGTERM; then it reads what the
                                      connections hold, writes those messages
                                      to OUT like recv, and exits.

PORT: listen on that port instead of a free one (a collector coming back
where the sink expects it). Both exit on SIGTERM after writing OUT. A message cut by a closed
connection is not written (the sender resends it).
"""
import os
import selectors
import signal
import socket
import sys


def frames(buf):
    """Complete frames in buf: (messages, rest)."""
    out = []
    while True:
        sp = buf.find(b" ")
        if sp <= 0 or not buf[:sp].isdigit():
            return out, buf
        n = int(buf[:sp])
        if len(buf) < sp + 1 + n:
            return out, buf
        out.append(buf[sp + 1:sp + 1 + n])
        buf = buf[sp + 1 + n:]


def msg_json(m):
    i = m.find(b"{")
    return m[i:] if i >= 0 else None


def main(argv):
    mode, port_file, out_path = argv[0], argv[1], argv[2]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "stall":
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lsock.bind(("127.0.0.1", int(argv[3]) if len(argv) > 3 else 0))
    lsock.listen(16)
    out = open(out_path, "ab", buffering=0)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    bufs = {}
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(lsock.getsockname()[1]))
    os.replace(tmp, port_file)

    def take(conn, final):
        try:
            data = conn.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if data:
            bufs[conn] += data
        msgs, bufs[conn] = frames(bufs[conn])
        for m in msgs:
            j = msg_json(m)
            if j is not None:
                out.write(j + b"\n")
        if not data:
            if not final:
                sel.unregister(conn)
            conn.close()
            del bufs[conn]
            return False
        return True

    while not stop["now"]:
        try:
            events = sel.select(timeout=0.2)
        except InterruptedError:
            continue
        for key, _ in events:
            if key.fileobj is lsock:
                conn, _ = lsock.accept()
                if mode == "stall":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                conn.setblocking(False)
                bufs[conn] = b""
                if mode == "recv":
                    sel.register(conn, selectors.EVENT_READ)
            else:
                take(key.fileobj, False)
    # SIGTERM: what the connections still hold (the stalled ones: all of it).
    for conn in list(bufs):
        conn.setblocking(True)
        conn.settimeout(0.5)
        while conn in bufs:
            try:
                if not take(conn, True):
                    break
            except socket.timeout:
                break
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
