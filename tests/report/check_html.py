#!/usr/bin/env python3
"""Opens a `jobwarden report --format html` page in Debian's headless
chromium (cdp.py: the DevTools protocol over --remote-debugging-pipe) and
checks what an analyst would get from it.

Usage: check_html.py PAGE.html REPORT.json SCREENSHOT.png [--strings STRINGS.json]
       check_html.py --smoke PAGE.html...

REPORT.json is the same record's `--format json` report: what the page must
show. Checks: the page loads with no console message, no exception, no log
entry and no network request but the page itself; it rendered; per run the
timeline has exactly one bar per process, each process's command line and
image appear in the tree as literal text (textContent equal to the
record's string), and no element or script came from any string (the only
scripts are the page's two, no img/iframe/svg/object/embed exists, no
attribute on*, window.__jwPwned unset); clicking an event row, a timeline
mark and a bar shows that event's or process's details; the severity
filter hides exactly the events of the unchecked severity. STRINGS.json
({"command_lines": [...]}) names strings that must each appear as a
command line. Then the CSP itself: the same page with an injected inline
script and an external image must run neither and load nothing.
A screenshot of the page is written to SCREENSHOT.png.
Exit 0, or 1 listing every failed check. No chromium is a failure."""

import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def page_problems(page, url):
    """Console messages, exceptions, error/warning log entries, and
    requests for anything but `url`."""
    out = []
    for e in page.my_events("Runtime.consoleAPICalled"):
        out.append("console.%s: %s" % (e["params"]["type"],
                                       [a.get("value", a.get("description")) for a in e["params"]["args"]]))
    for e in page.my_events("Runtime.exceptionThrown"):
        out.append("exception: %s" % e["params"]["exceptionDetails"].get("text"))
    for e in page.my_events("Log.entryAdded"):
        entry = e["params"]["entry"]
        out.append("log %s (%s): %s" % (entry["level"], entry["source"], entry["text"][:300]))
    for e in page.my_events("Network.requestWillBeSent"):
        if e["params"]["request"]["url"] != url:
            out.append("network request: %s" % e["params"]["request"]["url"][:200])
    return out


def smoke(pages):
    """--smoke PAGE.html...: each page loads with no console message,
    exception, log entry or request but its own, and draws one bar per
    process of its own data (the pages of damaged records: fuzz.py)."""
    try:
        browser = cdp.Browser()
    except cdp.CdpError as e:
        print("check_html: %s" % e, file=sys.stderr)
        return 1
    try:
        for html in pages:
            page = cdp.Page(browser)
            url = "file://" + os.path.abspath(html)
            page.navigate(url)
            check(page.evaluate("document.body.dataset.rendered") == "yes", "%s: not rendered" % html)
            for p in page_problems(page, url):
                failures.append("%s: %s" % (html, p))
            got = page.evaluate("""(() => {
              const d = JSON.parse(document.getElementById('jw-data').textContent);
              return [d.runs.map(r => r.processes.length),
                      Array.from(document.querySelectorAll('section.run')).map(
                        s => s.querySelectorAll('.timeline .bar').length)];
            })()""")
            check(got[0] == got[1], "%s: bars %r, processes %r" % (html, got[1], got[0]))
            page.send("Page.close")
    finally:
        browser.close()
    if failures:
        for f in failures[:30]:
            print("check_html: " + f, file=sys.stderr)
        return 1
    print("check_html: %d page(s) load and draw with no error and no request" % len(pages))
    return 0


def main():
    args = sys.argv[1:]
    if args[:1] == ["--smoke"]:
        return smoke(args[1:])
    strings = None
    if "--strings" in args:
        i = args.index("--strings")
        strings = json.load(open(args[i + 1], encoding="utf-8"))
        del args[i:i + 2]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    html, report_path, shot = args
    report = json.load(open(report_path, encoding="utf-8"))
    url = "file://" + os.path.abspath(html)
    try:
        browser = cdp.Browser()
    except cdp.CdpError as e:
        print("check_html: %s" % e, file=sys.stderr)
        return 1
    try:
        page = cdp.Page(browser)
        t0 = time.monotonic()
        page.navigate(url)
        load_ms = (time.monotonic() - t0) * 1000
        check(page.evaluate("document.body.dataset.rendered") == "yes", "the page did not render")
        for p in page_problems(page, url):
            failures.append(p)
        requests = [e["params"]["request"]["url"] for e in page.my_events("Network.requestWillBeSent")]
        check(requests == [url], "requests: %r (want only the page)" % requests[:5])

        # Nothing from the record became markup or script.
        dom = page.evaluate("""(() => {
          const all = Array.from(document.querySelectorAll('*'));
          return {
            scripts: Array.from(document.scripts).map(s => s.type || 'classic'),
            foreign: document.querySelectorAll('img,iframe,svg,object,embed,b,link,base,form').length,
            on: all.filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
            pwned: typeof window.__jwPwned,
            csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]').content
          };
        })()""")
        check(dom["scripts"] == ["application/json", "classic"], "scripts in the DOM: %r" % dom["scripts"])
        check(dom["foreign"] == 0, "%d element(s) the page never makes" % dom["foreign"])
        check(dom["on"] == 0, "%d element(s) with an on* attribute" % dom["on"])
        check(dom["pwned"] == "undefined", "window.__jwPwned was set")
        check(dom["csp"].startswith("default-src 'none'; script-src 'sha256-"), "CSP: %s" % dom["csp"])

        # The screenshot: the first run from its summary on (timeline,
        # tree), before anything is clicked.
        page.evaluate("(() => { const h = document.querySelector('#run-0 h3'); if (h) h.scrollIntoView(); })()")
        shot_data = page.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(shot_data))

        # The seal verdict (--key): one row per stream, per damage and per
        # duplicate line, the verdicts as badges; each incomplete line.
        if report.get("seal"):
            seal = report["seal"]
            got = page.evaluate("""(() => {
              const t = document.querySelector('table.seal');
              return t ? [Array.from(t.querySelectorAll('tr')).length,
                          Array.from(t.querySelectorAll('.badge')).map(b => b.textContent),
                          t.textContent.includes('DAMAGE '),
                          Array.from(t.querySelectorAll('td'))
                            .filter(d => d.textContent.startsWith('duplicate at ')).length,
                          Array.from(document.querySelectorAll('p'))
                            .filter(p => p.textContent.startsWith('INCOMPLETE ')).length] : null;
            })()""")
            streams = seal.get("streams", [])
            ndmg = sum(len(s.get("damage", [])) for s in streams)
            ndup = sum(len(s.get("duplicates", [])) for s in streams)
            ninc = len(seal.get("incomplete", []))
            check(got is not None and got[0] == len(streams) + ndmg + ndup and
                  got[1] == [s["verdict"] for s in streams] and got[2] == (ndmg > 0) and
                  got[3] == ndup and got[4] == ninc,
                  "seal section: %r for %d stream(s), %d damage(s), %d duplicate(s), %d incomplete"
                  % (got, len(streams), ndmg, ndup, ninc))

        for ri, run in enumerate(report["runs"]):
            sel = "#run-%d" % ri
            got = page.evaluate("""(() => {
              const r = document.querySelector('%s');
              return {
                bars: Array.from(r.querySelectorAll('.timeline .bar')).map(b => Number(b.dataset.index)),
                cmd: Array.from(r.querySelectorAll('.tree summary .cmd')).map(t => t.textContent),
                exe: Array.from(r.querySelectorAll('.tree summary .node')).map(t => t.textContent),
                rows: r.querySelectorAll('table.events tbody tr').length,
                marks: r.querySelectorAll('.timeline .mark').length
              };
            })()""" % sel)
            n = len(run["processes"])
            check(got["bars"] == list(range(n)), "run %d: bars %d, processes %d" % (ri, len(got["bars"]), n))
            def shown_cmd(p):
                # What the page must show: the command line, or why the
                # record has none (process.unavailable), or that it has none.
                u = (p.get("fields") or {}).get("unavailable")
                why = u.get("command_line") if isinstance(u, dict) else None
                if p["command_line"] is not None:
                    return p["command_line"]
                if isinstance(why, str):
                    return "(command line unavailable: " + why + ")"
                return "(command line not recorded)"
            want_cmd = [shown_cmd(p) for p in run["processes"]]
            want_exe = [p["executable"] if p["executable"] is not None else "(image unknown)"
                        for p in run["processes"]]
            check(got["cmd"] == want_cmd, "run %d: command lines in the tree differ from the record" % ri)
            for a, b in zip(got["cmd"], want_cmd):
                if a != b:
                    failures.append("  shown %r, recorded %r" % (a[:120], b[:120]))
                    break
            check(got["exe"] == want_exe, "run %d: images in the tree differ from the record" % ri)
            # A large run's lifecycle rows are drawn on demand (the box
            # starts unchecked): first the others, then all of them.
            lazy = not page.evaluate("document.querySelector('%s input.f-life').checked" % sel)
            check(lazy == (len(run["events"]) > 2000), "run %d: lifecycle rows lazy: %s" % (ri, lazy))
            if lazy:
                alert_rows = [e for e in run["events"] if e["category"] not in ("process", "job")]
                check(got["rows"] == len(alert_rows), "run %d: %d rows before the lifecycle box, want %d"
                      % (ri, got["rows"], len(alert_rows)))
                t1 = time.monotonic()
                page.evaluate("document.querySelector('%s input.f-life').click()" % sel)
                lazy_ms = (time.monotonic() - t1) * 1000
                got["rows"] = page.evaluate("document.querySelectorAll('%s table.events tbody tr').length" % sel)
                print("check_html: run %d: the lifecycle rows drawn on demand in %.0f ms" % (ri, lazy_ms))
            check(got["rows"] == len(run["events"]), "run %d: %d event rows, %d events" % (ri, got["rows"], len(run["events"])))
            alerts = [e for e in run["events"] if e["category"] in ("violation", "notice", "gap")]
            check(got["marks"] == len(alerts), "run %d: %d marks, %d violations/notices/gaps" % (ri, got["marks"], len(alerts)))

            # Click: an event row, a mark, a bar -> their details.
            def details():
                return page.evaluate("""(() => {
                  const d = document.querySelector('%s .details');
                  return d.classList.contains('hidden') ? null : JSON.parse(d.querySelector('pre').textContent);
                })()""" % sel)
            for kind, want in (("violation", [e for e in run["events"] if e["category"] == "violation"]),
                               ("process", [e for e in run["events"] if e["category"] == "process"])):
                if not want:
                    continue
                e = want[0]
                page.evaluate("document.querySelector('%s table.events tr[data-seq=\"%d\"]').click()" % (sel, e["seq"]))
                d = details()
                check(d is not None and d["seq"] == e["seq"] and d["message"] == e["message"] and
                      d["rule"] == e["rule"], "run %d: clicking %s event %d shows %r" % (ri, kind, e["seq"], d and d.get("seq")))
                if e.get("detail") is not None:
                    check(d is not None and d.get("detail") == e["detail"], "run %d: event %d detail" % (ri, e["seq"]))
            if alerts:
                e = alerts[-1]
                page.evaluate("document.querySelector('%s .timeline .mark[data-seq=\"%d\"]').click()" % (sel, e["seq"]))
                d = details()
                check(d is not None and d["seq"] == e["seq"], "run %d: clicking the mark of %d" % (ri, e["seq"]))
            if n:
                p = run["processes"][n - 1]
                page.evaluate("document.querySelector('%s .timeline .bar[data-index=\"%d\"]').click()" % (sel, n - 1))
                d = details()
                check(d is not None and d["pid"] == p["pid"] and d["command_line"] == p["command_line"],
                      "run %d: clicking bar %d" % (ri, n - 1))
            # Filter: unchecking info hides exactly the info events.
            hidden = page.evaluate("""(() => {
              const r = document.querySelector('%s');
              const cb = r.querySelector('input.f-sev[value="info"]');
              cb.click();
              const h = Array.from(r.querySelectorAll('table.events tbody tr.hidden')).map(t => Number(t.dataset.seq));
              cb.click();
              return h;
            })()""" % sel)
            want_hidden = [e["seq"] for e in run["events"] if e["severity"] == "info"]
            check(hidden == want_hidden, "run %d: the info filter hid %d rows, %d info events" % (ri, len(hidden), len(want_hidden)))

        if strings is not None:
            shown = set(page.evaluate("Array.from(document.querySelectorAll('.tree summary .cmd')).map(t => t.textContent)"))
            for s in strings["command_lines"]:
                check(s in shown, "string not shown as a command line: %r" % s[:80])
        for p in page_problems(page, url):
            if p not in failures:
                failures.append("after the clicks: " + p)

        # The CSP is what stops markup that got in anyway: an injected
        # inline script and an external image must do nothing.
        attacked = os.path.join(os.path.dirname(os.path.abspath(shot)), "csp-attack.html")
        text = open(html, encoding="utf-8").read()
        text = text.replace("</body>", "<script>window.__jwInjected=1</script>"
                            "<img src=\"http://127.0.0.1:9/x.png\"></body>", 1)
        with open(attacked, "w", encoding="utf-8") as f:
            f.write(text)
        page2 = cdp.Page(browser)
        aurl = "file://" + attacked
        page2.navigate(aurl)
        check(page2.evaluate("typeof window.__jwInjected") == "undefined", "CSP: an injected inline script ran")
        check(page2.evaluate("document.body.dataset.rendered") == "yes", "CSP: the page's own script did not run")
        # Chromium announces the image's request, then blocks it: every
        # request but the page's must have failed with blockedReason csp.
        blocked = {e["params"]["requestId"] for e in page2.my_events("Network.loadingFailed")
                   if e["params"].get("blockedReason") == "csp"}
        for e in page2.my_events("Network.requestWillBeSent"):
            if e["params"]["request"]["url"] != aurl:
                check(e["params"]["requestId"] in blocked,
                      "CSP: a request was not blocked: %s" % e["params"]["request"]["url"])
        check(any(e["params"]["request"]["url"].startswith("http://127.0.0.1:9/")
                  for e in page2.my_events("Network.requestWillBeSent")) and len(blocked) == 1,
              "CSP: the injected image was not seen and blocked (%d blocked)" % len(blocked))
        refused = [e for e in page2.my_events("Log.entryAdded") + page2.my_events("Runtime.consoleAPICalled")
                   if "Content Security Policy" in json.dumps(e)]
        check(len(refused) >= 2, "CSP: %d refusal(s) logged, want the script's and the image's" % len(refused))
    finally:
        browser.close()
    if failures:
        for f in failures[:50]:
            print("check_html: " + f, file=sys.stderr)
        print("check_html: %d check(s) failed (%s)" % (len(failures), html), file=sys.stderr)
        return 1
    print("check_html: %s: %d run(s), %d bar(s), loads with no error and no request (%d bytes, "
          "loaded and drawn in %.0f ms); CSP holds"
          % (html, len(report["runs"]), sum(len(r["processes"]) for r in report["runs"]),
             os.path.getsize(html), load_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
