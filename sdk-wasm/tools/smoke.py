#!/usr/bin/env python3
"""Smoke test of the SDK as shipped: builds it, serves it with a stand-in collector
(capture_server.py), and drives headless Chromium through chromedriver over a scripted visit.
Checks the wire contract the collector relies on: URL and key, text/plain without preflight,
gzip with compression=gzip, event order and ids, beacon on leave, retry after 503.

usage: smoke.py [BUILT_DIR]   (builds into a temp dir when not given)
"""
import json, os, shutil, subprocess, sys, tempfile, threading, time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import webdriver  # noqa: E402

PAGE = """<!doctype html><html><head><title>%(title)s</title></head><body>
<script>window.spoor=window.spoor||function(){(spoor.q=spoor.q||[]).push(arguments)};
spoor('track','queued_before_load',{n:1});</script>
<script async src="/spoor.js" data-key="pk_smoke" data-host="%(host)s" data-flush-ms="300"
  data-attrs="product-id"></script>
<p>Found <b data-spoor-results="7">7</b> results</p>
<a id="next" href="/two.html" data-product-id="sku-9">Next page</a>
<button id="spa" onclick="history.pushState({}, '', '/app/cart')">Cart</button>
<input id="pw" type="password" value="hunter2">
<div style="height:3000px"></div>
</body></html>"""

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + str(detail) if detail else ""))


class Collector:
    def __init__(self, static, statuses=()):
        self.records = []
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "capture_server.py"), static, "0"]
            + [str(s) for s in statuses],
            stdout=subprocess.PIPE, text=True)
        first = json.loads(self.proc.stdout.readline())
        self.port = first["listening"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.records.append(json.loads(line))

    def events(self):
        return [e for r in self.records if r.get("status") == 200 and r.get("batch")
                for e in r["batch"]["events"]]

    def wait_for(self, pred, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return True
            time.sleep(0.1)
        return False

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def write_pages(d, host):
    for name, title in (("one.html", "One"), ("two.html", "Two")):
        with open(os.path.join(d, name), "w") as f:
            f.write(PAGE % {"title": title, "host": host})


def main():
    built = sys.argv[1] if len(sys.argv) > 1 else None
    tmp = tempfile.mkdtemp(prefix="spoor-smoke-")
    try:
        if not built:
            built = os.path.join(tmp, "sdk")
            subprocess.run([os.path.join(os.path.dirname(here), "build"), built], check=True)
        site = os.path.join(tmp, "site")
        shutil.copytree(built, site)

        # --- a visit: landing with a search URL, SPA route, click to a second page ---
        c = Collector(site)
        host = "http://127.0.0.1:%d" % c.port
        write_pages(site, host)
        b = webdriver.Browser()
        try:
            b.get(host + "/one.html?q=red+shoes&utm_source=news&token=secret")
            check("page view delivered", c.wait_for(lambda: any(e["type"] == "page_view" for e in c.events())))
            b.js("document.getElementById('pw').click(); document.getElementById('spa').click();")
            b.js("document.getElementById('next').click();")
            check("second page view", c.wait_for(
                lambda: sum(e["type"] == "page_view" for e in c.events()) >= 3))
            b.get("about:blank")
            check("leave of the last page", c.wait_for(
                lambda: sum(e["type"] == "page_leave" for e in c.events()) >= 3))
            logs = [l for l in b.logs() if "spoor" in l.get("message", "")]
            check("no SDK errors in the console", not logs, logs)
        finally:
            b.close()
            c.close()
        evs = c.events()
        types = [e["type"] for e in evs]
        # Landing (search URL, queued track), SPA route after the Cart click, a link click to
        # page two (which replays its own queued track), then leaving it.
        expect = ["session_start", "page_view", "search", "track", "click", "page_leave",
                  "page_view", "click", "page_leave", "page_view", "track", "page_leave"]
        check("event order", types == expect, types)
        check("one session", len({e["session"]["id"] for e in evs}) == 1)
        check("one anonymous id", len({e["anonymous_id"] for e in evs}) == 1)
        check("unique event ids", len({e["event_id"] for e in evs}) == len(evs))
        pv = next(e for e in evs if e["type"] == "page_view")
        check("url scrubbed, utm kept", pv["page"]["url"].endswith("/one.html?q=red+shoes&utm_source=news"), pv["page"])
        s = next(e for e in evs if e["type"] == "search")["search"]
        check("search from url with count", s == {"query": "red shoes", "results_count": 7, "source": "url"}, s)
        t = next(e for e in evs if e["type"] == "track")
        check("pre-load queue replayed", t["name"] == "queued_before_load" and t["properties"] == {"n": 1}, t)
        cl = next(e for e in evs if e["type"] == "click" and e["click"]["tag"] == "a")
        check("click autocapture", cl["click"]["selector"] == "a#next" and cl["properties"] == {"product-id": "sku-9"}, cl)
        check("password never captured", not any("hunter2" in json.dumps(r) for r in c.records))
        spa = [e for e in evs if e["type"] == "page_view"][1]
        check("spa page view", spa["page"]["path"] == "/app/cart" and spa["page"]["referrer"].endswith("utm_source=news"), spa["page"])
        posts = [r for r in c.records if "path" in r]
        check("no preflight", not any("preflight" in r for r in c.records))
        check("key in query", all(r["query"].get("key") == "pk_smoke" for r in posts))
        check("text/plain", all((r["content_type"] or "").startswith("text/plain") for r in posts), [r["content_type"] for r in posts])
        gz = [r for r in posts if r["query"].get("compression") == "gzip"]
        check("gzip batches marked and magic", gz and all(r["gzip_magic"] for r in gz))
        check("plain batches not gzip", all(not r["gzip_magic"] for r in posts if r not in gz))
        beacons = [r for r in posts if r["batch"] and r["batch"].get("key")]
        check("beacon carries key in body", beacons, len(beacons))

        # --- retry: the collector answers 503 twice, then 200 ---
        c = Collector(site, statuses=[503, 503])
        host = "http://127.0.0.1:%d" % c.port
        write_pages(site, host)
        b = webdriver.Browser()
        try:
            b.get(host + "/one.html")
            check("delivered after 503s", c.wait_for(lambda: any(e["type"] == "page_view" for e in c.events()), 20))
        finally:
            b.close()
            c.close()
        attempts = [r for r in c.records if "path" in r]
        ids = [sorted(e["event_id"] for e in r["batch"]["events"]) for r in attempts[:3]]
        check("same event ids on every attempt", len(ids) == 3 and ids[0] == ids[1] == ids[2], ids)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
