#!/usr/bin/env python3
"""A webhook receiver for the end-to-end tests: Python's standard library only,
and an implementation of the Standard Webhooks verification independent of the
server's (https://www.standardwebhooks.com).

    webhook_receiver.py [--port N]

Prints `ready PORT` once listening on 127.0.0.1. Routes:

- `POST /hook`: a delivery. Verified with every secret the test registered:
  `webhook-id`, `webhook-timestamp` (within 5 minutes of now) and
  `webhook-signature` (space-separated `v1,<base64>`; each is the HMAC-SHA256,
  under the base64-decoded part of `whsec_…` after the prefix, of
  `{id}.{timestamp}.{body}`, compared in constant time). A delivery that does
  not verify is answered 400 and recorded with `verified: false`. While the
  test has asked for failures, a delivery is answered 500 instead (and
  recorded with `answered: 500`).
- `POST /always-500`: recorded, answered 500.
- `POST /_control` `{"secrets": [...], "fail_next": N}`: sets the secrets
  and how many of the next `/hook` deliveries get a 500.
- `GET /_deliveries`: every delivery recorded, oldest first: `path`, `id`,
  `timestamp`, `answered`, `verified`, `verified_by` (the indices of the
  secrets whose signature is in the header), `n_signatures`, `body`.
"""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 5 * 60

state = {"secrets": [], "fail_next": 0, "deliveries": []}
lock = threading.Lock()


def expected_signature(secret, msg_id, timestamp, body):
    if not secret.startswith("whsec_"):
        return None
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(headers, body, secrets):
    """(verified, indices of the secrets that signed, number of signatures)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if not (msg_id and timestamp and header):
        return False, [], 0
    try:
        ts = int(timestamp)
    except ValueError:
        return False, [], 0
    if abs(time.time() - ts) > TOLERANCE_S:
        return False, [], 0
    given = []
    for part in header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and sig:
            given.append(sig)
    signed_by = []
    for i, secret in enumerate(secrets):
        want = expected_signature(secret, msg_id, timestamp, body)
        if want and any(hmac.compare_digest(want, sig) for sig in given):
            signed_by.append(i)
    return bool(signed_by), signed_by, len(given)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, payload=None):
        data = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_deliveries":
            with lock:
                self.answer(200, state["deliveries"])
        else:
            self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path == "/_control":
            control = json.loads(body or b"{}")
            with lock:
                if "secrets" in control:
                    state["secrets"] = list(control["secrets"])
                if "fail_next" in control:
                    state["fail_next"] = int(control["fail_next"])
            self.answer(200)
            return
        if self.path not in ("/hook", "/always-500"):
            self.answer(404)
            return
        with lock:
            verified, signed_by, n_signatures = verify(self.headers, body, state["secrets"])
            if self.path == "/always-500":
                status = 500
            elif state["fail_next"] > 0:
                state["fail_next"] -= 1
                status = 500
            elif not verified:
                status = 400
            else:
                status = 204
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            state["deliveries"].append({
                "path": self.path,
                "id": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "answered": status,
                "verified": verified,
                "verified_by": signed_by,
                "n_signatures": n_signatures,
                "body": parsed,
            })
        self.answer(status)


def main():
    port = 0
    args = sys.argv[1:]
    if args[:1] == ["--port"]:
        port = int(args[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
