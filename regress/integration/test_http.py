"""HTTP ingress (DESIGN.md section 7): every status and the condition that
causes it, forms (URL-encoded, multipart, attachments, honeypot, Origin,
CSRF, redirects), the JSON API (Bearer keys, lockout, coercion,
to_override, dry run, Idempotency-Key), rate limits and trusted proxies,
/healthz and /metrics (promtool), logs without secrets, slow clients.

One daemon serves most tests (module fixture); tests that need their own
state start their own."""
import concurrent.futures
import email
import email.policy
import glob
import hashlib
import hmac
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import pytest

from conftest import IS_ROOT, RELAY_USER, Daemon, ensure_users, free_port
from fakes import FakeProvider

PROVIDER_KEY = "pm-sentinel-http-0d9c8b7a6f5e4d3c"
API_KEY = "sentinel-api-key-5c1e7a90d3b24f68"
API_KEY_HASHED = "second-api-key-hashed-91b2c3d4e5f6"
CSRF_SECRET = "sentinel-csrf-secret-7e6d5c4b3a29"
ENV = {"POSTHORN_TEST_PROVIDER_KEY": PROVIDER_KEY, "HTTP_API_KEY": API_KEY,
       "HTTP_CSRF_SECRET": CSRF_SECRET}
SECRETS = (PROVIDER_KEY, API_KEY, API_KEY_HASHED, CSRF_SECRET)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
READ_TIMEOUT = 2


# --- the daemon --------------------------------------------------------------------------

def make_outbox(d):
    out = os.path.join(d, "outbox")
    os.makedirs(out, exist_ok=True)
    if IS_ROOT:
        pw = pwd.getpwnam(RELAY_USER)
        os.chown(out, pw.pw_uid, pw.pw_gid)
    return out


def global_block(d, http_port, extra_http=""):
    users = "user = _posthorn\nrelay_user = _posthorn_relay\n" if IS_ROOT else ""
    return f"""\
[global]
hostname = http.posthorn.invalid
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log = stderr
log_format = json
log_level = debug
retry_initial = 1s
retry_max = 2s

[http]
listen = 127.0.0.1:{http_port}
read_timeout = {READ_TIMEOUT}s
{extra_http}
[transport outbox]
type = file
directory = {make_outbox(d)}
"""


def postmark(name, url, timeout="10s"):
    return f"""
[transport {name}]
type = postmark
api_key = ${{env.POSTHORN_TEST_PROVIDER_KEY}}
base_url = {url}
timeout = {timeout}
"""


def endpoint(path, **keys):
    """keys: posthorn.conf keys; lists become repeated lines."""
    form = {"to": "owner@example.com", "from": "Contact Form <noreply@example.com>",
            "subject": "Contact from {{.name}}", "body": "From: {{.name}} <{{.email}}>\n  {{.message}}",
            "required": "name, message", "transport": "outbox"}
    if keys.get("auth") == "api-key":
        form.update({"api_keys": ["${env.HTTP_API_KEY}",
                                  "sha256:" + hashlib.sha256(API_KEY_HASHED.encode()).hexdigest()],
                     "from": "App <app@example.com>", "subject": "{{.subject_line}}",
                     "body": "{{.message}}", "required": "subject_line, message"})
    form.update(keys)
    text = f"\n[endpoint {path}]\n"
    for k, v in form.items():
        if v is None:
            continue
        for item in (v if isinstance(v, list) else [v]):
            text += f"{k} = {item}\n"
    return text


class Http:
    """A running daemon and what it talks to."""

    def __init__(self, daemon, port, workdir, fakes):
        self.daemon = daemon
        self.port = port
        self.dir = workdir
        self.fakes = fakes

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()

    def form(self, path, fields, headers=None, **kw):
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", path, urllib.parse.urlencode(fields), h, **kw)

    def api(self, path, obj, key=API_KEY, headers=None, raw=None, **kw):
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        return self.request("POST", path, raw if raw is not None else json.dumps(obj), h, **kw)

    def logs(self, msg=None, **fields):
        return [l for l in self.daemon.logs()
                if (msg is None or l.get("msg") == msg) and all(l.get(k) == v for k, v in fields.items())]

    def log_for(self, msg, submission_id, timeout=10):
        return self.daemon.wait_log(msg, timeout=timeout, submission_id=submission_id, proc="httpd")

    def eml(self, submission_id, timeout=15):
        path = os.path.join(self.dir, "outbox", submission_id + ".eml")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                time.sleep(0.05)
                with open(path, "rb") as f:
                    return email.message_from_binary_file(f, policy=email.policy.default)
            time.sleep(0.05)
        raise AssertionError(f"no {path}")

    def metrics(self):
        r = self.request("GET", "/metrics")
        assert r.status == 200
        return r


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def assert_error(r, status, code):
    assert r.status == status, r
    assert r.headers["content-type"].startswith("application/json"), r
    doc = r.json()
    assert doc["code"] == code, r
    assert isinstance(doc["error"], str) and doc["error"], r
    return doc


def assert_success(r, status=200, word="ok"):
    assert r.status == status, r
    doc = r.json()
    assert doc["status"] == word, r
    assert UUID_RE.match(doc["submission_id"]), r
    return doc


def start_daemon(workdir, text):
    d = Daemon(workdir, text, env=ENV)
    d.start()
    return d


@pytest.fixture(scope="module")
def srv():
    if IS_ROOT:
        ensure_users()
    workdir = tempfile.mkdtemp(prefix="posthorn-http-")
    os.chmod(workdir, 0o755)
    fakes = {"ok": FakeProvider(), "fail": FakeProvider(), "hang": FakeProvider()}
    fakes["fail"].default = ("status", 422, {"ErrorCode": 300, "Message": "Invalid email request"})
    port = free_port()
    text = global_block(workdir, port, "trusted_proxies = 10.0.0.0/8\n")
    text += postmark("pm", fakes["ok"].url) + postmark("pmfail", fakes["fail"].url)
    text += postmark("pmhang", fakes["hang"].url, timeout="3s")
    text += endpoint("/form", transport="pm", email_field="email", honeypot="_gotcha")
    text += endpoint("/form/queue", delivery="queue")
    text += endpoint("/form/html", transport="pm", redirect_success="/thanks",
                     redirect_error="https://example.com/oops?from=form")
    text += endpoint("/form/origin", transport="pm",
                     allowed_origins="https://example.com, http://localhost:8080")
    text += endpoint("/form/rate", transport="pm", rate_limit="5/1m")
    text += endpoint("/form/xff-trusted", transport="pm", rate_limit="1/1h",
                     trusted_proxies="127.0.0.1")
    text += endpoint("/form/xff-untrusted", transport="pm", rate_limit="1/1h")
    text += endpoint("/form/csrf", transport="pm", csrf_secret="${env.HTTP_CSRF_SECRET}",
                     csrf_token_ttl="1h")
    text += endpoint("/form/files", delivery="queue", attachments="yes",
                     max_attachment_size="1KB", max_attachments=2, attachment_types="text/plain, image/*")
    text += endpoint("/form/small", transport="pm", max_body_size="1KB")
    text += endpoint("/form/private", transport="pm", strip_client_ip="yes")
    text += endpoint("/api/tx", auth="api-key", transport="pm", trusted_proxies="127.0.0.1")
    text += endpoint("/api/queue", auth="api-key", delivery="queue")
    text += endpoint("/api/dry", auth="api-key", dry_run="yes", transport="pm",
                     body="Hello {{.name}}", subject="Re: {{.subject_line}}",
                     reply_to_email_field="email", required=None)
    text += endpoint("/api/fail", auth="api-key", transport="pmfail")
    text += endpoint("/api/fail-quiet", auth="api-key", transport="pmfail", log_failed_submissions="no")
    text += endpoint("/api/hang", auth="api-key", transport="pmhang")
    text += endpoint("/api/rate", auth="api-key", transport="pm", rate_limit="3/1m")
    d = start_daemon(workdir, text)
    yield Http(d, port, workdir, fakes)
    d.stop()
    for f in fakes.values():
        f.close()
    shutil.rmtree(workdir, ignore_errors=True)


def csrf_token(ts, secret=CSRF_SECRET):
    ts = str(ts)
    return ts + "." + hmac.new(secret.encode(), ts.encode(), hashlib.sha256).hexdigest()


FIELDS = {"name": "Ada", "email": "ada@example.org", "message": "Hello there"}


# --- server basics ------------------------------------------------------------------------

def test_healthz(srv):
    r = srv.request("GET", "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    assert srv.request("HEAD", "/healthz").status == 200
    assert_error(srv.request("POST", "/healthz", "x"), 405, "method_not_allowed")


def test_unknown_path_404(srv):
    assert_error(srv.request("GET", "/nope"), 404, "not_found")
    assert_error(srv.request("POST", "/form/", "a=b"), 404, "not_found")
    assert_error(srv.request("POST", "/FORM", "a=b"), 404, "not_found")


def test_method_405(srv):
    r = srv.request("GET", "/form")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    assert_error(srv.request("PUT", "/api/tx", "{}"), 405, "method_not_allowed")


def test_content_type_415(srv):
    r = srv.request("POST", "/form", json.dumps(FIELDS), {"Content-Type": "application/json"})
    assert_error(r, 415, "unsupported_media_type")
    assert_error(srv.request("POST", "/form", "name=x"), 415, "unsupported_media_type")
    r = srv.request("POST", "/api/tx", "subject_line=x",
                    {"Content-Type": "application/x-www-form-urlencoded",
                     "Authorization": f"Bearer {API_KEY}"})
    assert_error(r, 415, "unsupported_media_type")


def test_keep_alive(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    for _ in range(3):
        c.request("GET", "/healthz")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"ok\n"
    c.close()


# --- forms ---------------------------------------------------------------------------------

def test_form_sync_success_reaches_provider(srv):
    before = len(srv.fakes["ok"].requests)
    r = srv.form("/form", dict(FIELDS, extra="x", zz_last="1"))
    doc = assert_success(r)
    reqs = srv.fakes["ok"].wait_requests(before + 1)
    sent = reqs[before].json()
    assert sent["From"] == "Contact Form <noreply@example.com>"
    assert sent["To"] == "owner@example.com"
    assert sent["Subject"] == "Contact from Ada"
    assert sent["ReplyTo"] == "ada@example.org"
    assert sent["TextBody"] == ("From: Ada <ada@example.org>\nHello there\n\n"
                                "Additional fields:\nextra: x\nzz_last: 1\n")
    srv.log_for("submission_sent", doc["submission_id"])


def test_form_queue_202_and_message(srv):
    doc = assert_success(srv.form("/form/queue", FIELDS), 202, "queued")
    m = srv.eml(doc["submission_id"])
    assert m["Subject"] == "Contact from Ada"
    assert m["To"] == "owner@example.com"
    assert "Hello there" in m.get_content()


def test_query_string_is_not_fields(srv):
    r = srv.form("/form?name=Q&message=Q", {"email": "q@example.org"})
    doc = assert_error(r, 422, "validation_failed")
    assert doc["fields"] == {"name": "required", "message": "required"}


def test_validation_422(srv):
    doc = assert_error(srv.form("/form", {"name": " ", "email": "not-an-address"}), 422,
                       "validation_failed")
    assert doc["fields"] == {"name": "required", "message": "required",
                             "email": "invalid email format"}
    doc = assert_error(srv.form("/form", dict(FIELDS, email="a@b\r\nBcc: x@example.com")), 422,
                       "validation_failed")
    assert doc["fields"] == {"email": "invalid email format"}


def test_malformed_form_400(srv):
    r = srv.request("POST", "/form", "name=%zz", {"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_body")
    r = srv.request("POST", "/form", "x", {"Content-Type": "multipart/form-data"})
    assert_error(r, 400, "invalid_body")
    r = srv.request("POST", "/form", "name=%ff%fe&message=x",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_body")
    r = srv.request("POST", "/form", "name=a%00b&message=x",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_body")


def test_body_too_large_413(srv):
    big = {"name": "x", "message": "m" * 2000}
    assert_error(srv.form("/form/small", big), 413, "body_too_large")
    assert_success(srv.form("/form/small", FIELDS))


def test_browser_post_gets_303(srv):
    html = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    r = srv.form("/form/html", FIELDS, headers=html)
    assert r.status == 303, r
    assert r.headers["location"] == "/thanks"
    r = srv.form("/form/html", {"name": "x"}, headers=html)
    assert r.status == 303, r
    assert r.headers["location"] == "https://example.com/oops?from=form&error=validation_failed"
    # JSON clients, */* and no Accept at all get JSON
    for accept in (None, "*/*", "application/json"):
        h = {"Accept": accept} if accept else {}
        assert_success(srv.form("/form/html", FIELDS, headers=h))


def test_multipart_fields(srv):
    boundary = "----posthornBoundary7MA4YWxkTrZu0gW"
    parts = [("name", "Grace"), ("message", "multi\r\nline"), ("topic", "billing")]
    body = ""
    for k, v in parts:
        body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n"
             f"Content-Type: text/plain\r\n\r\nignored file\r\n--{boundary}--\r\n")
    r = srv.request("POST", "/form/queue", body.encode(),
                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    doc = assert_success(r, 202, "queued")
    m = srv.eml(doc["submission_id"])
    text = m.get_content()
    assert m["Subject"] == "Contact from Grace"
    assert "multi\nline" in text.replace("\r\n", "\n")
    assert "topic: billing" in text
    assert "ignored file" not in m.as_string()  # attachments are off on this endpoint
    assert not m.is_multipart()


def multipart(boundary, fields, files):
    body = b""
    for k, v in fields.items():
        body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    for field, (fname, ctype, data) in files:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                 f"filename=\"{fname}\"\r\nContent-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def test_multipart_attachments(srv):
    b = "xyzBOUNDARYxyz"
    h = {"Content-Type": f"multipart/form-data; boundary={b}"}
    body = multipart(b, {"name": "Ann", "message": "see file"},
                     [("doc", ("notes.txt", "text/plain", b"file content\n")),
                      ("pic", ("dot.png", "image/png", b"\x89PNG\r\n\x1a\n\x00"))])
    doc = assert_success(srv.request("POST", "/form/files", body, h), 202, "queued")
    m = srv.eml(doc["submission_id"])
    atts = {a.get_filename(): a for a in m.iter_attachments()}
    assert set(atts) == {"notes.txt", "dot.png"}
    assert atts["notes.txt"].get_content().replace("\r\n", "\n") == "file content\n"
    assert atts["dot.png"].get_content() == b"\x89PNG\r\n\x1a\n\x00"
    # type not allowed, too large, too many
    body = multipart(b, {"name": "Ann", "message": "x"}, [("doc", ("x.exe", "application/x-msdownload", b"MZ"))])
    doc = assert_error(srv.request("POST", "/form/files", body, h), 422, "validation_failed")
    assert doc["fields"] == {"doc": "attachment type not allowed"}
    body = multipart(b, {"name": "Ann", "message": "x"}, [("doc", ("big.txt", "text/plain", b"a" * 1500))])
    assert_error(srv.request("POST", "/form/files", body, h), 413, "attachment_too_large")
    body = multipart(b, {"name": "Ann", "message": "x"},
                     [("f", (f"{i}.txt", "text/plain", b"x")) for i in range(3)])
    assert_error(srv.request("POST", "/form/files", body, h), 413, "too_many_attachments")


def test_honeypot_silent_success(srv):
    before = len(srv.fakes["ok"].requests)
    r = srv.form("/form", dict(FIELDS, _gotcha="http://spam.example"))
    doc = assert_success(r)
    assert set(doc) == {"status", "submission_id"}
    srv.daemon.wait_log("spam_blocked", kind="honeypot", submission_id=doc["submission_id"])
    time.sleep(0.5)
    assert len(srv.fakes["ok"].requests) == before
    assert not srv.logs("submission_received", submission_id=doc["submission_id"])
    # same headers and shape as a real success
    real = srv.form("/form", FIELDS)
    fake = srv.form("/form", dict(FIELDS, _gotcha="x"))
    assert real.status == fake.status
    assert set(real.headers) == set(fake.headers)
    assert set(real.json()) == set(fake.json())


# --- Origin / Referer ------------------------------------------------------------------------

def test_origin_rules(srv):
    ok = assert_success
    ok(srv.form("/form/origin", FIELDS, headers={"Origin": "https://example.com"}))
    ok(srv.form("/form/origin", FIELDS, headers={"Origin": "http://LOCALHOST:8080"}))
    ok(srv.form("/form/origin", FIELDS, headers={"Origin": "https://example.com:443"}))
    ok(srv.form("/form/origin", FIELDS, headers={"Referer": "https://example.com/contact?x=1"}))
    ok(srv.form("/form/origin", FIELDS, headers={"Origin": "null", "Referer": "https://example.com/"}))
    # Origin mismatch is refused even with a matching Referer
    r = srv.form("/form/origin", FIELDS, headers={"Origin": "https://evil.example",
                                                   "Referer": "https://example.com/contact"})
    assert_error(r, 403, "origin_not_allowed")
    assert_error(srv.form("/form/origin", FIELDS, headers={"Origin": "http://example.com"}), 403,
                 "origin_not_allowed")
    assert_error(srv.form("/form/origin", FIELDS, headers={"Referer": "https://evil.example/"}), 403,
                 "origin_not_allowed")
    # neither header: refused
    assert_error(srv.form("/form/origin", FIELDS), 403, "origin_not_allowed")
    assert srv.logs("spam_blocked", kind="origin", reason="missing")


# --- CSRF ------------------------------------------------------------------------------------

def test_csrf_tokens(srv):
    now = int(time.time())
    assert_success(srv.form("/form/csrf", dict(FIELDS, _csrf_token=csrf_token(now))))
    assert_success(srv.form("/form/csrf", dict(FIELDS, _csrf_token=csrf_token(now - 3500))))
    cases = {
        "expired": csrf_token(now - 3700),
        "forged": csrf_token(now, "some other secret entirely"),
        "future": csrf_token(now + 600),
        "malformed": "not-a-token",
    }
    for reason, token in cases.items():
        r = srv.form("/form/csrf", dict(FIELDS, _csrf_token=token))
        doc = assert_error(r, 403, "csrf_invalid")
        assert srv.logs("spam_blocked", kind="csrf", reason=reason), reason
    assert_error(srv.form("/form/csrf", FIELDS), 403, "csrf_invalid")
    assert srv.logs("spam_blocked", kind="csrf", reason="missing")


def test_csrf_token_not_in_message(srv):
    before = len(srv.fakes["ok"].requests)
    assert_success(srv.form("/form/csrf", dict(FIELDS, _csrf_token=csrf_token(int(time.time())))))
    sent = srv.fakes["ok"].wait_requests(before + 1)[before].json()
    assert "_csrf_token" not in sent["TextBody"]


# --- rate limits and client addresses --------------------------------------------------------

def test_rate_limit_sixth_request_429(srv):
    for i in range(5):
        assert_success(srv.form("/form/rate", FIELDS)), i
    r = srv.form("/form/rate", FIELDS)
    assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 12
    assert srv.logs("rate_limited", endpoint="/form/rate")


def test_xff_through_trusted_proxy(srv):
    # the peer (127.0.0.1) is trusted here: the right-most untrusted X-Forwarded-For entry is the client
    h1 = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}
    doc = assert_success(srv.form("/form/xff-trusted", FIELDS, headers=h1))
    line = srv.log_for("submission_received", doc["submission_id"])
    assert line["client_ip"] == "198.51.100.1"
    assert_error(srv.form("/form/xff-trusted", FIELDS, headers=h1), 429, "rate_limited")
    # another client behind the same proxy has its own bucket
    doc = assert_success(srv.form("/form/xff-trusted", FIELDS,
                                  headers={"X-Forwarded-For": "198.51.100.2"}))
    assert srv.log_for("submission_received", doc["submission_id"])["client_ip"] == "198.51.100.2"


def test_xff_through_untrusted_proxy(srv):
    # 127.0.0.1 is not in [http] trusted_proxies (10.0.0.0/8): X-Forwarded-For is ignored
    doc = assert_success(srv.form("/form/xff-untrusted", FIELDS,
                                  headers={"X-Forwarded-For": "198.51.100.3"}))
    assert srv.log_for("submission_received", doc["submission_id"])["client_ip"] == "127.0.0.1"
    r = srv.form("/form/xff-untrusted", FIELDS, headers={"X-Forwarded-For": "198.51.100.4"})
    assert_error(r, 429, "rate_limited")


def test_strip_client_ip(srv):
    doc = assert_success(srv.form("/form/private", FIELDS))
    line = srv.log_for("submission_sent", doc["submission_id"])
    for l in srv.logs(submission_id=doc["submission_id"]):
        if l.get("proc") == "httpd":
            assert "client_ip" not in l, l
    assert line["endpoint"] == "/form/private"


# --- API -------------------------------------------------------------------------------------

TX = {"subject_line": "Receipt", "message": "Thanks!"}


def test_api_sync_plain_and_hashed_keys(srv):
    before = len(srv.fakes["ok"].requests)
    assert_success(srv.api("/api/tx", TX))
    assert_success(srv.api("/api/tx", TX, key=API_KEY_HASHED))
    reqs = srv.fakes["ok"].wait_requests(before + 2)
    assert reqs[before].json()["Subject"] == "Receipt"
    assert reqs[before].headers["x-postmark-server-token"] == PROVIDER_KEY


def test_api_queue_202(srv):
    doc = assert_success(srv.api("/api/queue", TX), 202, "queued")
    assert srv.eml(doc["submission_id"])["Subject"] == "Receipt"


def test_api_auth_401(srv):
    r = srv.api("/api/tx", TX, key=None)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(srv.api("/api/tx", TX, key="wrong-key"), 401, "unauthorized")
    assert_error(srv.api("/api/tx", TX, key=API_KEY + "x"), 401, "unauthorized")
    digest = "sha256:" + hashlib.sha256(API_KEY_HASHED.encode()).hexdigest()
    assert_error(srv.api("/api/tx", TX, key=digest), 401, "unauthorized")
    r = srv.request("POST", "/api/tx", json.dumps(TX), {"Content-Type": "application/json",
                                                       "Authorization": f"Basic {API_KEY}"})
    assert_error(r, 401, "unauthorized")
    assert srv.logs("auth_failed", endpoint="/api/tx")


def test_api_lockout_per_address(srv):
    # 10 failures a minute from one client address lock it out, even with the right key
    h = {"X-Forwarded-For": "203.0.113.99"}
    for _ in range(10):
        assert_error(srv.api("/api/tx", TX, key="guess", headers=h), 401, "unauthorized")
    r = srv.api("/api/tx", TX, headers=h)
    assert_error(r, 429, "auth_locked")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # other addresses are not affected
    assert_success(srv.api("/api/tx", TX, headers={"X-Forwarded-For": "203.0.113.100"}))


def test_api_bad_json_400(srv):
    for raw, why in (("{", "body is not valid JSON"), ("[1]", "body must be a JSON object"),
                     ('{"a":{"b":1}}', 'field "a": nested objects are not supported'),
                     ('{"a":[[1]]}', 'field "a": nested arrays and objects are not supported'),
                     ('{"a":1,"a":2}', 'field "a": appears twice')):
        doc = assert_error(srv.api("/api/tx", None, raw=raw), 400, "invalid_json")
        assert doc["error"] == why


def test_api_validation_and_to_override(srv):
    doc = assert_error(srv.api("/api/tx", {"message": "x"}), 422, "validation_failed")
    assert doc["fields"] == {"subject_line": "required"}
    for override in ("victim@example.com\r\nBcc: all@example.com", ["ok@example.com", "a\nb@example.com"],
                     "not an address", [], ["x@example.com"] * 51):
        doc = assert_error(srv.api("/api/tx", dict(TX, to_override=override)), 422, "validation_failed")
        assert "to_override" in doc["fields"]
    before = len(srv.fakes["ok"].requests)
    assert_success(srv.api("/api/tx", dict(TX, to_override=["a@example.net", " b@example.net "])))
    sent = srv.fakes["ok"].wait_requests(before + 1)[before].json()
    assert sent["To"] == "a@example.net, b@example.net"
    assert "to_override" not in sent["TextBody"]


def test_api_from_cannot_be_overridden(srv):
    before = len(srv.fakes["ok"].requests)
    assert_success(srv.api("/api/tx", dict(TX, **{"from": "ceo@example.com"})))
    sent = srv.fakes["ok"].wait_requests(before + 1)[before].json()
    assert sent["From"] == "App <app@example.com>"


def test_api_dry_run_and_coercion(srv):
    before = len(srv.fakes["ok"].requests)
    body = {"subject_line": "Hi\r\nBcc: x@example.com", "name": "Bob", "email": "bob@example.org",
            "n": 5, "pi": 3.25, "ok": True, "nothing": None, "tags": ["a", 1, False]}
    r = srv.api("/api/dry", body)
    doc = assert_success(r, 200, "dry_run")
    pm = doc["prepared_message"]
    assert set(pm) == {"from", "to", "reply_to", "subject", "body_text", "body_html"}
    assert pm["from"] == "App <app@example.com>"
    assert pm["to"] == ["owner@example.com"]
    assert pm["reply_to"] == "bob@example.org"
    assert pm["subject"] == "Re: Hi Bcc: x@example.com"
    assert pm["body_html"] == ""
    assert pm["body_text"] == ("Hello Bob\n\nAdditional fields:\nemail: bob@example.org\nn: 5\n"
                               "ok: true\npi: 3.25\ntags: a, 1, false\n")
    time.sleep(0.3)
    assert len(srv.fakes["ok"].requests) == before


def test_api_rate_limit_per_key(srv):
    for _ in range(3):
        assert_success(srv.api("/api/rate", TX))
    r = srv.api("/api/rate", TX)
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    # the other key has its own bucket
    assert_success(srv.api("/api/rate", TX, key=API_KEY_HASHED))


def test_delivery_failure_502_and_failed_log(srv):
    before = len(srv.fakes["fail"].requests)
    r = srv.api("/api/fail", dict(TX, detail="keep me"))
    assert_error(r, 502, "delivery_failed")
    assert len(srv.fakes["fail"].wait_requests(before + 1)) == before + 1
    line = srv.daemon.wait_log("submission_failed", endpoint="/api/fail", proc="httpd")
    assert line["error_class"] == "permanent"
    assert json.loads(line["form"])["detail"] == "keep me"
    r = srv.api("/api/fail-quiet", dict(TX, detail="secret-ish"))
    assert_error(r, 502, "delivery_failed")
    line = srv.daemon.wait_log("submission_failed", endpoint="/api/fail-quiet", proc="httpd")
    assert "form" not in line
    assert b"secret-ish" not in srv.daemon.log_bytes()


# --- Idempotency-Key -------------------------------------------------------------------------

def test_idempotent_replay_byte_for_byte(srv):
    key = "order-" + uuid.uuid4().hex
    before = len(srv.fakes["ok"].requests)
    first = srv.api("/api/tx", TX, headers={"Idempotency-Key": key})
    assert_success(first)
    assert "idempotency-replayed" not in first.headers
    second = srv.api("/api/tx", TX, headers={"Idempotency-Key": key})
    assert second.status == first.status
    assert second.body == first.body
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["idempotency-replayed"] == "true"
    time.sleep(0.3)
    assert len(srv.fakes["ok"].requests) == before + 1
    assert srv.logs("idempotent_replay", endpoint="/api/tx")
    # scoped to the API key: the other key with the same Idempotency-Key is a new request
    third = srv.api("/api/tx", TX, key=API_KEY_HASHED, headers={"Idempotency-Key": key})
    assert_success(third)
    assert third.body != first.body


def test_idempotency_key_reused_422(srv):
    key = "reuse-" + uuid.uuid4().hex
    assert_success(srv.api("/api/tx", TX, headers={"Idempotency-Key": key}))
    r = srv.api("/api/tx", dict(TX, message="different"), headers={"Idempotency-Key": key})
    assert_error(r, 422, "idempotency_key_reused")


def test_idempotency_key_invalid_400(srv):
    for bad in ("x" * 256, "caf\u00e9"):
        r = srv.api("/api/tx", TX, headers={"Idempotency-Key": bad.encode("utf-8").decode("latin-1")})
        assert_error(r, 400, "invalid_idempotency_key")


def test_idempotency_in_flight_409(srv):
    fake = srv.fakes["hang"]
    fake.release.clear()
    fake.script = [("hang", 20)]
    key = "slow-" + uuid.uuid4().hex
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(srv.api, "/api/hang", TX, headers={"Idempotency-Key": key})
        fake.wait_requests(len(fake.requests) or 1)
        r = srv.api("/api/hang", TX, headers={"Idempotency-Key": key})
        assert_error(r, 409, "idempotency_in_flight")
        # a different body while in flight is a reused key
        r = srv.api("/api/hang", dict(TX, message="other"), headers={"Idempotency-Key": key})
        assert_error(r, 422, "idempotency_key_reused")
        fake.release.set()
        done = first.result(timeout=30)
    assert done.status in (200, 502), done
    if done.status == 502:
        # a failure is not cached: the key can be used again
        assert srv.api("/api/hang", TX, headers={"Idempotency-Key": key}).status in (200, 502)


# --- metrics ---------------------------------------------------------------------------------

def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    line = f"{name}{{{want}}} " if labels else f"{name} "
    for l in text.splitlines():
        if l.startswith(line):
            return float(l[len(line):])
    return 0.0


def test_metrics_promtool_and_counters(srv):
    before = srv.metrics().body.decode()
    assert_success(srv.form("/form", FIELDS))
    assert_error(srv.form("/form", {"name": "x"}), 422, "validation_failed")
    assert_success(srv.form("/form", dict(FIELDS, _gotcha="spam")))
    assert_error(srv.api("/api/tx", TX, key="nope", headers={"X-Forwarded-For": "203.0.113.50"}), 401,
                 "unauthorized")
    key = "m-" + uuid.uuid4().hex
    srv.api("/api/tx", TX, headers={"Idempotency-Key": key})
    srv.api("/api/tx", TX, headers={"Idempotency-Key": key})
    r = srv.metrics()
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = r.body.decode()
    delta = lambda name, **l: metric(after, name, **l) - metric(before, name, **l)
    assert delta("posthorn_submissions_received_total", endpoint="/form") == 1
    assert delta("posthorn_submissions_sent_total", endpoint="/form", transport="pm") == 1
    assert delta("posthorn_validation_failed_total", endpoint="/form") == 1
    assert delta("posthorn_spam_blocked_total", endpoint="/form", kind="honeypot") == 1
    assert delta("posthorn_auth_failed_total", endpoint="/api/tx") == 1
    assert delta("posthorn_idempotent_replay_total", endpoint="/api/tx") == 1
    assert delta("posthorn_send_latency_seconds_count", endpoint="/form", transport="pm") == 1
    assert metric(after, "posthorn_send_latency_seconds_bucket", endpoint="/form", transport="pm",
                  le="+Inf") == metric(after, "posthorn_send_latency_seconds_count", endpoint="/form",
                                       transport="pm")
    assert "# TYPE posthorn_send_latency_seconds histogram" in after
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus)")
    p = subprocess.run([promtool, "check", "metrics"], input=r.body, capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_metrics_method(srv):
    assert_error(srv.request("POST", "/metrics", "x"), 405, "method_not_allowed")


# --- robustness ------------------------------------------------------------------------------

def test_slow_client_cut_off_without_blocking_others(srv):
    slow = socket.create_connection(("127.0.0.1", srv.port))
    slow.sendall(b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
    started = time.time()
    # others are served meanwhile
    for _ in range(3):
        t = time.time()
        assert srv.request("GET", "/healthz").status == 200
        assert time.time() - t < 1
    slow.settimeout(READ_TIMEOUT + 5)
    try:
        data = slow.recv(4096)
    except ConnectionResetError:
        data = b""
    elapsed = time.time() - started
    slow.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
    assert READ_TIMEOUT - 0.5 <= elapsed <= READ_TIMEOUT + 3, elapsed


def drip_until_cut(sock):
    """Send a request header one byte every half second, which never trips an
    inactivity timeout; seconds until the server cut the connection, or None."""
    started = time.time()
    for b in b"POST /form HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"a" * 200:
        try:
            sock.sendall(bytes([b]))
            sock.settimeout(0.5)
            if sock.recv(4096) == b"":
                return time.time() - started
        except socket.timeout:
            pass
        except OSError:
            return time.time() - started
    return None


def test_dripping_client_cut_off(srv):
    # one header byte every half second never trips the inactivity timeout; the
    # first request must still be complete within twice read_timeout
    slow = socket.create_connection(("127.0.0.1", srv.port))
    cut = drip_until_cut(slow)
    slow.close()
    assert cut is not None, "the dripping client was never cut off"
    assert 2 * READ_TIMEOUT - 0.5 <= cut <= 2 * READ_TIMEOUT + 2.5, cut
    # a keep-alive connection is not limited once its first request is in
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    for _ in range(2):
        c.request("GET", "/healthz")
        assert c.getresponse().read() == b"ok\n"
        time.sleep(READ_TIMEOUT * 0.8)
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200
    c.close()


def test_dripping_second_request_cut_off(srv):
    # after a quick first request, the next one on the same keep-alive
    # connection gets the same deadline: dripping it is no way around the guard
    c = socket.create_connection(("127.0.0.1", srv.port))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    c.settimeout(5)
    assert b"200" in c.recv(4096)
    cut = drip_until_cut(c)
    c.close()
    assert cut is not None, "the dripping keep-alive client was never cut off"
    assert cut <= 2 * READ_TIMEOUT + 2.5, cut


def test_oversized_headers_refused(srv):
    r = srv.request("GET", "/healthz", headers={"X-Big": "a" * 70000})
    assert r.status in (400, 413, 431), r


def test_zz_secrets_never_logged(srv):
    # runs last in this module: every request above has been logged by now
    time.sleep(0.3)
    data = srv.daemon.log_bytes()
    for s in SECRETS:
        assert s.encode() not in data, s
    assert b"sha256:" + hashlib.sha256(API_KEY_HASHED.encode()).hexdigest().encode() not in data


# --- tests with their own daemon -------------------------------------------------------------

def test_queue_unavailable_500(workdir):
    if not IS_ROOT:
        pytest.skip("needs root to make the spool unwritable for the relayer")
    ensure_users()
    port = free_port()
    text = global_block(workdir, port) + endpoint("/q", delivery="queue")
    d = start_daemon(workdir, text)
    try:
        h = Http(d, port, workdir, {})
        assert_success(h.form("/q", FIELDS), 202, "queued")
        spool = os.path.join(workdir, "spool")
        modes = {}
        for dirpath, dirnames, _ in os.walk(spool):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames]:
                modes[name] = os.stat(name).st_mode & 0o7777
        for name in modes:
            os.chmod(name, 0o500)
        try:
            r = h.form("/q", FIELDS)
        finally:
            for name, mode in modes.items():
                os.chmod(name, mode)
        doc = assert_error(r, 500, "queue_unavailable")
        line = d.wait_log("submission_failed", endpoint="/q", proc="httpd")
        assert line["error_class"] == "unavailable"
    finally:
        d.stop()


def test_reload_keeps_listener_and_applies_endpoints(workdir):
    if IS_ROOT:
        ensure_users()
    port = free_port()
    base = global_block(workdir, port)
    d = start_daemon(workdir, base + endpoint("/one", rate_limit="1/1h"))
    try:
        h = Http(d, port, workdir, {})
        assert_success(h.form("/one", FIELDS))
        assert_error(h.form("/one", FIELDS), 429, "rate_limited")
        assert_error(h.form("/two", FIELDS), 404, "not_found")
        d.write_conf(base + endpoint("/one", rate_limit="1/1h") + endpoint("/two"))
        d.signal(__import__("signal").SIGHUP)
        d.wait_log("config_reloaded")
        deadline = time.time() + 5
        while h.form("/two", FIELDS).status == 404 and time.time() < deadline:
            time.sleep(0.1)
        assert_success(h.form("/two", FIELDS))
        # rate-limit state survives the reload of the same path
        assert_error(h.form("/one", FIELDS), 429, "rate_limited")
        assert h.request("GET", "/healthz").status == 200
    finally:
        d.stop()


def test_sigterm_finishes_request_in_progress(workdir):
    if IS_ROOT:
        ensure_users()
    fake = FakeProvider()
    fake.script = [("hang", 1.5)]
    port = free_port()
    text = global_block(workdir, port) + postmark("slow", fake.url, timeout="5s")
    text += endpoint("/slow", transport="slow")
    d = start_daemon(workdir, text)
    try:
        h = Http(d, port, workdir, {})
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(h.form, "/slow", FIELDS)
            fake.wait_requests(1)
            d.signal(__import__("signal").SIGTERM)
            r = pending.result(timeout=30)
        # the request in progress gets its answer (the hang ends, the retry succeeds or fails)
        assert r.status in (200, 502), r
        assert d.wait(timeout=30) == 0
        # and nothing new is accepted any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        d.stop()
        fake.close()
