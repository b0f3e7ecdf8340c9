"""Fake providers on loopback: they record every request and answer from a
script (200, 4xx, 429 with Retry-After, 5xx, or hang), so tests can assert
the exact wire format each transport sends."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorded:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers          # dict, lower-case names
        self.body = body                # bytes

    def json(self):
        return json.loads(self.body)


class FakeProvider:
    """kind: postmark | resend | mailgun | ses — selects the success body."""

    SUCCESS = {
        "postmark": lambda n: {"To": "x", "SubmittedAt": "2026-01-01T00:00:00Z",
                               "MessageID": f"pm-{n}", "ErrorCode": 0, "Message": "OK"},
        "resend": lambda n: {"id": f"rs-{n}"},
        "mailgun": lambda n: {"id": f"<mg-{n}@mg.example.com>", "message": "Queued. Thank you."},
        "ses": lambda n: {"MessageId": f"ses-{n}"},
    }

    def __init__(self, kind="postmark"):
        self.kind = kind
        self.requests = []
        self.script = []          # list of responses to use first, then default
        self.default = ("ok",)
        self.lock = threading.Lock()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                rec = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake.lock:
                    fake.requests.append(rec)
                    n = len(fake.requests)
                    action = fake.script.pop(0) if fake.script else fake.default
                fake.respond(self, action, n)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def respond(self, handler, action, n):
        kind = action[0]
        if kind == "hang":
            self.release.wait(action[1] if len(action) > 1 else 30)
            return
        if kind == "ok":
            status, body, headers = 200, self.SUCCESS[self.kind](n), {}
        elif kind == "status":
            status = action[1]
            body = action[2] if len(action) > 2 else {"ErrorCode": 300, "Message": "error"}
            headers = action[3] if len(action) > 3 else {}
        else:
            raise ValueError(kind)
        data = json.dumps(body).encode()
        # One write for status, headers and body: split writes meet delayed
        # ACKs on the client side and cap a keep-alive connection at ~25 req/s.
        head = [f"HTTP/1.1 {status} {handler.responses.get(status, ('x',))[0]}",
                "Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        handler.wfile.flush()

    def wait_requests(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {n} requests, got {len(self.requests)}")

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
