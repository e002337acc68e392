"""A small Chrome DevTools Protocol client over --remote-debugging-pipe
(python3 stdlib only): Chromium reads commands on fd 3 and writes replies
and events on fd 4, each message one JSON text ended by a NUL byte.

Used by check_html.py to open a report page in Debian's headless chromium
and watch everything it does: console messages, exceptions, log entries
(a Content-Security-Policy refusal is one) and network requests."""

import json
import os
import select
import shutil
import subprocess
import tempfile
import time


class CdpError(Exception):
    pass


class Browser:
    def __init__(self, timeout=60.0):
        exe = shutil.which("chromium")
        if exe is None:
            raise CdpError("chromium is not installed (Debian package chromium; "
                           "scripts/setup.sh installs it)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="jw-report-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # fds 3 and 4 of the child, whatever numbers the pipes got here.
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [exe, "--headless", "--remote-debugging-pipe",
                "--user-data-dir=" + self.profile, "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--disable-gpu",
                "--window-size=1400,1000", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses root otherwise
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=child_fds,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events = []  # every event message received, in order

    def close(self):
        try:
            os.close(self._to_chrome)
        except OSError:
            pass
        try:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        os.close(self._from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("chromium did not answer in time")
            r, _, _ = select.select([self._from_chrome], [], [], left)
            if not r:
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the debugging pipe (did it start?)")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None):
        """Sends a command and returns its result; events that arrive
        meanwhile are kept in self.events."""
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise CdpError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, session=None):
        """Returns the first event `method` (of `session`) not yet taken."""
        deadline = time.monotonic() + self.timeout
        i = 0
        while True:
            while i < len(self.events):
                e = self.events[i]
                if e.get("method") == method and (session is None or e.get("sessionId") == session):
                    e["_taken"] = True
                    return e
                i += 1
            self.events.append(self._read_message(deadline))


class Page:
    """One tab, attached with a flat session; Runtime, Log, Network and
    Page enabled before anything is loaded."""

    def __init__(self, browser):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget",
                                    {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(domain + ".enable")

    def send(self, method, params=None):
        return self.b.send(method, params, self.session)

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})
        self.b.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError("evaluate %r: %s" % (expr[:80], r["exceptionDetails"]))
        return r["result"].get("value")

    def my_events(self, method):
        return [e for e in self.b.events
                if e.get("method") == method and e.get("sessionId") == self.session]
