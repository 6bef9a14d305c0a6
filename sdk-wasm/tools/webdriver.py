"""Just enough WebDriver (W3C, over HTTP to chromedriver) for the SDK's smoke check and
benchmark: no Selenium, no browser downloads — Debian's chromium + chromedriver."""
import json, os, shutil, socket, subprocess, tempfile, time, urllib.request

CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-extensions"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Browser:
    def __init__(self, extra_args=()):
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="spoor-chrome-")
        driver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
        self.proc = subprocess.Popen([driver, "--port=%d" % self.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self._req("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"browserName": "chrome", "goog:chromeOptions": {
            "binary": os.environ.get("CHROME_BIN", "/usr/bin/chromium"),
            "args": CHROME_ARGS + ["--user-data-dir=" + self.profile] + list(extra_args)},
            "goog:loggingPrefs": {"browser": "ALL"}}
        r = self._req("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self.sid = r["value"]["sessionId"]

    def _req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read() or b"{}")

    def cmd(self, method, path, body=None):
        return self._req(method, "/session/%s%s" % (self.sid, path), body)["value"]

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        self.cmd("POST", "/timeouts", {"script": 300000})
        return self.cmd("POST", "/execute/async", {"script": script, "args": list(args)})

    def logs(self):
        try:
            return self.cmd("POST", "/se/log", {"type": "browser"})
        except Exception:
            return []

    def close(self):
        try:
            self._req("DELETE", "/session/" + self.sid)
        except Exception:
            pass
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
