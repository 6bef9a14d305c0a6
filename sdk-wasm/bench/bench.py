#!/usr/bin/env python3
"""Main-thread cost of the SDK in headless Chromium (Debian chromium + chromedriver over
WebDriver): time per `spoor('track', …)` call and per autocaptured click over 10 000 events
each, and long tasks (> 50 ms) seen while the SDK batches, compresses and sends them to a
stand-in collector on localhost. Budget: < 0.05 ms per event, no long task.

usage: bench.py [BUILT_DIR]
"""
import json, os, shutil, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
tools = os.path.join(os.path.dirname(here), "tools")
sys.path.insert(0, tools)
import webdriver  # noqa: E402
from smoke import Collector  # noqa: E402

N = 10_000
CHUNK = 200
BUDGET_MS = 0.05


def main():
    built = sys.argv[1] if len(sys.argv) > 1 else None
    tmp = tempfile.mkdtemp(prefix="spoor-bench-")
    ok = True
    try:
        if not built:
            built = os.path.join(tmp, "sdk")
            subprocess.run([os.path.join(os.path.dirname(here), "build"), built], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        site = os.path.join(tmp, "site")
        shutil.copytree(built, site)
        shutil.copy(os.path.join(here, "index.html"), site)
        c = Collector(site)
        host = "http://127.0.0.1:%d" % c.port
        b = webdriver.Browser()
        try:
            b.get(host + "/index.html")
            run = "var cb = arguments[arguments.length - 1];"
            base = b.js_async(run + "runChunked(%d, %d, clickTargets()).then(cb);" % (N, CHUNK))
            b.js_async(run + "loadSdk(%s).then(cb);" % json.dumps(host))
            b.js("window.longTasks.length = 0;")
            track = b.js_async(run + "runChunked(%d, %d, function (i) {"
                               " spoor('track', 'bench_event', {i: i, plan: 'pro', tags: ['a', 'b']}); }).then(cb);"
                               % (N, CHUNK))
            clicks = b.js_async(run + "runChunked(%d, %d, clickTargets()).then(cb);" % (N, CHUNK))
            expect = 2 * N
            delivered = c.wait_for(lambda: sum(e["type"] in ("track", "click") for e in c.events()) >= expect, 60)
            time.sleep(1)
            long_tasks = b.js("return window.longTasks;")
        finally:
            b.close()
            c.close()
        n_track = sum(e["type"] == "track" for e in c.events())
        n_click = sum(e["type"] == "click" for e in c.events())
        per_track = track / N
        per_click = (clicks - base) / N
        print("track():          %.4f ms per call  (%d calls, %.1f ms total)" % (per_track, N, track))
        print("autocaptured click: %.4f ms per click of SDK work (%.4f ms with dispatch, %.4f ms dispatch alone)"
              % (per_click, clicks / N, base / N))
        print("delivered:        %d track + %d click events in %d requests (%d gzip)"
              % (n_track, n_click, sum(1 for r in c.records if "path" in r),
                 sum(1 for r in c.records if r.get("query", {}).get("compression") == "gzip")))
        print("long tasks:       %s" % (["%.0f ms" % t for t in long_tasks] or "none"))
        for name, v in (("track", per_track), ("click", per_click)):
            if v >= BUDGET_MS:
                print("OVER BUDGET: %s %.4f ms >= %.2f ms" % (name, v, BUDGET_MS))
                ok = False
        if long_tasks:
            print("OVER BUDGET: long tasks")
            ok = False
        if not delivered:
            print("NOT DELIVERED: expected %d events" % expect)
            ok = False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
