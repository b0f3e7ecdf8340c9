"""The relayer: wire formats against fake providers, retries, dead letters,
sync vs queue replies, crash safety and secrecy. Mail enters over SMTP."""
import email
import email.policy
import glob
import json
import os
import pwd
import signal
import smtplib
import subprocess
import time

import pytest

from conftest import IS_ROOT, RELAY_USER, free_port
from fakes import FakeProvider

SENTINEL = "pk-sentinel-4b1d9a7c0e2f3a5b"
ENV = {"POSTHORN_TEST_PROVIDER_KEY": SENTINEL, "POSTHORN_TEST_AWS_SECRET": SENTINEL + "aws"}


def conf(d, smtp_port, transport_block, delivery="queue", extra_global=""):
    users = "user = _posthorn\nrelay_user = _posthorn_relay\n" if IS_ROOT else ""
    return f"""\
[global]
hostname = relay.posthorn.invalid
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log_level = debug
retry_initial = 1s
retry_max = 2s
{extra_global}
{transport_block}

[smtp in]
listen = 127.0.0.1:{smtp_port}
tls = none
auth_required = none
allowed_senders = *@example.com
transport = out
delivery = {delivery}
idle_timeout = 30s
"""


def postmark_block(url, timeout="5s"):
    return f"""[transport out]
type = postmark
api_key = ${{env.POSTHORN_TEST_PROVIDER_KEY}}
base_url = {url}
message_stream = outbound
timeout = {timeout}
"""


def send(port, subject="Hello", body="Hi there.\n", rcpts=("dest@example.org",),
         sender="app@example.com", extra_headers=""):
    body = body.replace("\r\n", "\n").replace("\n", "\r\n")
    msg = (f"From: App <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
           f"{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.example.com")
        try:
            resp = s.sendmail(sender, list(rcpts), msg.encode())
            return 250, resp
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error


@pytest.fixture
def provider():
    fakes = []

    def make(kind="postmark"):
        f = FakeProvider(kind)
        fakes.append(f)
        return f

    yield make
    for f in fakes:
        f.close()


def start(daemon_factory, workdir, block, **kw):
    port = free_port()
    d = daemon_factory(conf(workdir, port, block, **kw), env=ENV)
    d.start()
    return d, port


def assert_no_secret(d):
    data = d.log_bytes()
    assert SENTINEL.encode() not in data


def test_postmark_wire_format(daemon_factory, workdir, provider):
    pm = provider("postmark")
    d, port = start(daemon_factory, workdir, postmark_block(pm.url))
    code, _ = send(port, subject="Grüße", body="Body text\n", rcpts=("a@example.org", "b@example.org"))
    assert code == 250
    req = pm.wait_requests(1)[0]
    assert req.method == "POST" and req.path == "/email"
    assert req.headers["x-postmark-server-token"] == SENTINEL
    assert req.headers["content-type"].startswith("application/json")
    body = req.json()
    assert body["From"] == "App <app@example.com>"
    assert body["To"] == "a@example.org, b@example.org"
    assert body["Subject"] == "Grüße"
    assert body["TextBody"] == "Body text\r\n"
    assert body["MessageStream"] == "outbound"
    assert "HtmlBody" not in body
    line = d.wait_log("submission_sent")
    assert line["provider_id"] == "pm-1"
    assert not glob.glob(f"{workdir}/spool/queue/*.json")
    assert_no_secret(d)


def test_transient_then_success_delivered_once(daemon_factory, workdir, provider):
    pm = provider("postmark")
    pm.script = [("status", 503), ("status", 429, {"Message": "slow down"}, {"Retry-After": "1"})]
    d, port = start(daemon_factory, workdir, postmark_block(pm.url))
    assert send(port)[0] == 250
    d.wait_log("submission_sent", timeout=20)
    time.sleep(1.5)
    reqs = pm.requests
    assert len(reqs) == 3
    retries = [l for l in d.logs() if l.get("msg") == "delivery_retry_scheduled"]
    assert len(retries) == 2 and retries[1]["retry_in_seconds"] == 1
    assert_no_secret(d)


def test_permanent_failure_goes_to_dead_letter(daemon_factory, workdir, provider):
    pm = provider("postmark")
    pm.default = ("status", 422, {"ErrorCode": 300, "Message": f"Invalid token {SENTINEL}"})
    d, port = start(daemon_factory, workdir, postmark_block(pm.url))
    assert send(port)[0] == 250
    line = d.wait_log("submission_failed")
    assert line["error_class"] == "permanent"
    time.sleep(0.3)
    assert len(pm.requests) == 1
    dead = glob.glob(f"{workdir}/spool/dead/*.json")
    assert len(dead) == 1
    assert json.load(open(dead[0]))["message"]["id"] == line["submission_id"]
    assert not glob.glob(f"{workdir}/spool/queue/*.json")
    assert_no_secret(d)
    assert SENTINEL not in open(dead[0]).read()


def test_hang_times_out_and_is_retried(daemon_factory, workdir, provider):
    pm = provider("postmark")
    pm.script = [("hang", 5)]
    d, port = start(daemon_factory, workdir, postmark_block(pm.url, timeout="1s"))
    assert send(port)[0] == 250
    attempt = d.wait_log("delivery_attempt", result="transient")
    assert attempt["detail"] == "timeout"
    d.wait_log("submission_sent", timeout=20)


def test_sync_mode_replies(daemon_factory, workdir, provider):
    pm = provider("postmark")
    d, port = start(daemon_factory, workdir, postmark_block(pm.url), delivery="sync")
    code, resp = send(port)
    assert code == 250
    pm.default = ("status", 422, {"ErrorCode": 300, "Message": "bad"})
    code, resp = send(port)
    assert code == 554
    pm.default = ("status", 503)
    code, resp = send(port)
    assert code == 451
    time.sleep(0.3)
    # 1 + 1 + 2 (one retry for the transient failure)
    assert len(pm.requests) == 4
    # Sync failures leave nothing in the spool: the client owns the retry.
    assert not glob.glob(f"{workdir}/spool/queue/*.json")
    assert not glob.glob(f"{workdir}/spool/dead/*.json")


def test_queue_survives_kill_9(daemon_factory, workdir, provider):
    pm = provider("postmark")
    pm.default = ("status", 503)
    d, port = start(daemon_factory, workdir, postmark_block(pm.url))
    assert send(port, subject="survivor")[0] == 250
    pm.wait_requests(1)
    queued = glob.glob(f"{workdir}/spool/queue/*.json")
    assert len(queued) == 1
    kids = d.children()
    os.kill(d.proc.pid, signal.SIGKILL)
    for pid in kids.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    d.proc.wait()
    time.sleep(0.3)
    before = len(pm.requests)
    pm.default = ("ok",)
    d.start()
    d.wait_log("submission_sent", timeout=20)
    time.sleep(2.5)
    ok = [r for r in pm.requests[before:] if r.json()["Subject"] == "survivor"]
    assert len(ok) == 1
    assert not glob.glob(f"{workdir}/spool/queue/*.json")


def test_partial_and_corrupt_spool_files_at_start(daemon_factory, workdir, provider):
    pm = provider("postmark")
    port = free_port()
    d = daemon_factory(conf(workdir, port, postmark_block(pm.url)), env=ENV)
    for sub in ("tmp", "queue"):
        os.makedirs(f"{workdir}/spool/{sub}", exist_ok=True)
    with open(f"{workdir}/spool/tmp/12345.1", "w") as f:
        f.write('{"spool_version":1,"attem')
    with open(f"{workdir}/spool/queue/0123456789abcdef0123456789abcdef.json", "w") as f:
        f.write("not json at all")
    if IS_ROOT:  # what a crashed relayer leaves is its own
        subprocess.run(["chown", "-R", f"{RELAY_USER}:{RELAY_USER}", f"{workdir}/spool"], check=True)
    d.start()
    rec = d.wait_log("spool_recovered")
    assert rec["removed_partial"] == 1 and rec["quarantined"] == 1
    assert d.find_log("spool_quarantined")
    assert os.listdir(f"{workdir}/spool/tmp") == []
    assert os.path.exists(f"{workdir}/spool/corrupt/0123456789abcdef0123456789abcdef.json")
    # Still works.
    assert send(port)[0] == 250
    d.wait_log("submission_sent")


def test_resend_mailgun_ses_wire_formats(daemon_factory, workdir, provider):
    rs, mg, ses = provider("resend"), provider("mailgun"), provider("ses")
    port = free_port()
    blocks = f"""[transport out]
type = resend
api_key = ${{env.POSTHORN_TEST_PROVIDER_KEY}}
base_url = {rs.url}

[transport mg]
type = mailgun
api_key = ${{env.POSTHORN_TEST_PROVIDER_KEY}}
domain = mg.example.com
base_url = {mg.url}

[transport ses]
type = ses
region = eu-west-1
access_key_id = AKIDEXAMPLE
secret_access_key = ${{env.POSTHORN_TEST_AWS_SECRET}}
base_url = {ses.url}
"""
    text = conf(workdir, port, blocks)
    port2, port3 = free_port(), free_port()
    text += f"""
[smtp mg]
listen = 127.0.0.1:{port2}
tls = none
auth_required = none
allowed_senders = *@example.com
transport = mg

[smtp ses]
listen = 127.0.0.1:{port3}
tls = none
auth_required = none
allowed_senders = *@example.com
transport = ses
"""
    d = daemon_factory(text, env=ENV).start()
    for p in (port, port2, port3):
        assert send(p, rcpts=("a@example.org", "b@example.org"))[0] == 250
    r = rs.wait_requests(1)[0]
    assert r.path == "/emails" and r.headers["authorization"] == f"Bearer {SENTINEL}"
    b = r.json()
    assert b["from"] == "App <app@example.com>" and b["to"] == ["a@example.org", "b@example.org"]
    assert b["subject"] == "Hello" and b["text"] == "Hi there.\r\n"
    assert r.headers.get("idempotency-key")
    m = mg.wait_requests(1)[0]
    assert m.path == "/v3/mg.example.com/messages"
    import base64
    assert m.headers["authorization"] == "Basic " + base64.b64encode(f"api:{SENTINEL}".encode()).decode()
    assert m.headers["content-type"].startswith("multipart/form-data")
    assert m.body.count(b'name="to"') == 2
    s = ses.wait_requests(1)[0]
    assert s.path == "/v2/email/outbound-emails"
    assert s.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/ses/aws4_request" in s.headers["authorization"]
    sb = s.json()
    assert sb["FromEmailAddress"] == "App <app@example.com>"
    assert sb["Destination"]["ToAddresses"] == ["a@example.org", "b@example.org"]
    assert sb["Content"]["Simple"]["Subject"] == {"Data": "Hello", "Charset": "UTF-8"}
    for _ in range(3):
        pass
    d.wait_log("submission_sent")
    assert SENTINEL.encode() not in d.log_bytes()


def test_file_transport_writes_eml(daemon_factory, workdir):
    outbox = f"{workdir}/outbox"
    os.makedirs(outbox)
    if IS_ROOT:
        relay = pwd.getpwnam(RELAY_USER)
        os.chown(outbox, relay.pw_uid, relay.pw_gid)
    block = f"[transport out]\ntype = file\ndirectory = {outbox}\n"
    d, port = start(daemon_factory, workdir, block)
    assert send(port, subject="Grüße aus Köln", body="Zeile eins\n")[0] == 250
    line = d.wait_log("submission_sent")
    path = os.path.join(outbox, line["provider_id"])
    msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    assert msg["Subject"] == "Grüße aus Köln"
    assert msg["To"] == "dest@example.org"
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content().replace("\r\n", "\n") == "Zeile eins\n"
    assert not [f for f in os.listdir(outbox) if f.startswith(".")]


class SmtpSink:
    """aiosmtpd on loopback with STARTTLS required and AUTH PLAIN/LOGIN."""

    def __init__(self, workdir, user="relayuser", password="relay-pass-123"):
        import ssl
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        cert, key = f"{workdir}/sink.crt", f"{workdir}/sink.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.messages = []
        self.auth_seen = []
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                sink.helo = hostname
                session.host_name = hostname
                return responses

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 2.0.0 Ok: queued as SINK42"

        def authenticator(server, session, envelope, mechanism, auth_data):
            sink.auth_seen.append(mechanism)
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     tls_context=ctx, require_starttls=True,
                                     authenticator=authenticator, auth_require_tls=True)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def test_smtp_transport_starttls_auth_bytes(daemon_factory, workdir):
    sink = SmtpSink(workdir)
    try:
        block = f"""[transport out]
type = smtp
host = 127.0.0.1
port = {sink.port}
tls = starttls
tls_verify = no
username = relayuser
password = ${{env.POSTHORN_TEST_PROVIDER_KEY}}
helo = posthorn.example.net
"""
        env = dict(ENV, POSTHORN_TEST_PROVIDER_KEY="relay-pass-123")
        port = free_port()
        d = daemon_factory(conf(workdir, port, block), env=env).start()
        assert send(port, subject="Über SMTP", body="line one\n.leading dot\n",
                    rcpts=("x@example.org", "y@example.org"))[0] == 250
        line = d.wait_log("submission_sent", timeout=20)
        assert line["provider_id"] == "SINK42"
        assert sink.helo == "posthorn.example.net"
        assert sink.auth_seen and sink.auth_seen[0] in ("PLAIN", "LOGIN")
        mail_from, rcpts, content = sink.messages[0]
        assert mail_from == "app@example.com"
        assert rcpts == ["x@example.org", "y@example.org"]
        assert b"\r\n.leading dot\r\n" in content  # dot-unstuffed by the sink again
        assert b"\n" not in content.replace(b"\r\n", b"")
        msg = email.message_from_bytes(content, policy=email.policy.default)
        assert msg["Subject"] == "Über SMTP"
        assert msg["From"] == "App <app@example.com>"
        assert msg["To"] == "x@example.org, y@example.org"
        assert msg["Message-ID"].endswith("@posthorn.example.net>")
        assert msg["Date"]
        assert msg.get_content().replace("\r\n", "\n") == "line one\n.leading dot\n"
        assert b"relay-pass-123" not in d.log_bytes()
    finally:
        sink.stop()
