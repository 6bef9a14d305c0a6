#!/usr/bin/env python3
"""A stand-in collector for SDK checks: serves static files (the built SDK and test pages)
and records every POST /v1/batch (query, headers, body — gunzipped when compression=gzip)
as one JSON line on stdout. CORS like the real collector. Loopback only.

usage: capture_server.py STATIC_DIR [PORT] [--status CODE]...
  --status: answer the first POSTs with these codes (e.g. 503 503), then 200.
"""
import gzip, json, sys, threading, os
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from urllib.parse import urlsplit, parse_qs

static = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 0
statuses = [int(a) for a in sys.argv[3:] if a.isdigit()]
lock = threading.Lock()

class H(SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=static, **kw)

    def log_message(self, *a):
        pass

    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "Retry-After")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def guess_type(self, path):
        if path.endswith(".wasm"):
            return "application/wasm"
        if path.endswith(".mjs"):
            return "text/javascript"
        return super().guess_type(path)

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "POST")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.end_headers()
        with lock:
            print(json.dumps({"preflight": self.path}), flush=True)

    def do_POST(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = gzip.decompress(raw) if q.get("compression") == "gzip" else raw
        with lock:
            status = statuses.pop(0) if statuses else 200
        try:
            batch = json.loads(body)
        except Exception:
            batch = None
            status = 400
        rec = {"path": u.path, "query": q, "status": status,
               "content_type": self.headers.get("Content-Type"),
               "raw_bytes": len(raw), "gzip_magic": raw[:2] == b"\x1f\x8b", "batch": batch}
        with lock:
            print(json.dumps(rec), flush=True)
        out = b""
        if status == 200 and batch:
            out = json.dumps({"accepted": len(batch.get("events", [])), "rejected": []}).encode()
        self.send_response(status)
        if status in (429, 503):
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

srv = ThreadingHTTPServer(("127.0.0.1", port), H)
print(json.dumps({"listening": srv.server_address[1]}), flush=True)
srv.serve_forever()
