"""SMTP ingress (DESIGN.md section 6): every reply of the table, real clients
(smtplib with STARTTLS and AUTH, implicit TLS, client certificates),
pipelining, limits, MIME into the file transport's .eml, and robustness."""
import base64
import concurrent.futures
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import IS_ROOT, free_port
from fakes import FakeProvider
from smtp_support import (HOSTNAME, Certs, RawSmtp, eml_by_id, global_block, listener_block,
                          message, outbox_block, outbox_files, read_eml, wait_outbox)

PASSWORD = "correct horse battery staple"


class Server:
    def __init__(self, daemon, ports, workdir):
        self.daemon = daemon
        self.ports = ports
        self.dir = workdir

    def port(self, name=None):
        return self.ports[name] if name else next(iter(self.ports.values()))

    def logs(self, msg=None):
        return [l for l in self.daemon.logs() if msg is None or l.get("msg") == msg]


@pytest.fixture
def certs(workdir):
    return Certs(workdir)


@pytest.fixture
def server(daemon_factory, workdir):
    def make(listeners, global_extra="", transports="", log_level="debug"):
        ports = {}
        text = global_block(workdir, log_level=log_level, extra=global_extra)
        text += outbox_block(workdir) + transports
        for name, keys in listeners.items():
            ports[name] = free_port()
            text += listener_block(name, ports[name], **keys)
        d = daemon_factory(text)
        d.start()
        return Server(d, ports, workdir)
    return make


def tls_keys(certs, **extra):
    keys = {"tls": "starttls", "tls_cert": certs.server, "tls_key": certs.server_key}
    keys.update(extra)
    return keys


def auth_keys(certs, **extra):
    keys = tls_keys(certs, auth_required="smtp-auth", smtp_user=[f"alice {PASSWORD}"])
    keys.update(extra)
    return keys


def queued_id(reply):
    assert reply.code == 250, reply
    prefix = "2.0.0 OK queued as "
    assert reply.lines[-1].startswith(prefix), reply
    return reply.lines[-1][len(prefix):]


def transaction(c, msg=None, sender="app@example.com", rcpts=("dest@example.org",)):
    assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send((msg or message(sender=sender)) + ".\r\n")
    return c.reply()


# --- the dialogue ------------------------------------------------------------------------

def test_greeting_ehlo_keywords_and_simple_commands(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        assert c.greeting.code == 220
        assert c.greeting.lines == [f"{HOSTNAME} ESMTP posthorn"]
        r = c.cmd("EHLO client.example.com")
        assert r.code == 250
        assert r.lines[0].startswith(HOSTNAME)
        assert r.lines[1:] == ["SIZE 1048576", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
        assert c.cmd("NOOP").text == "2.0.0 OK"
        assert c.cmd("VRFY someone").code == 252
        assert c.cmd("HELP").code == 214
        assert c.cmd("RSET").code == 250
        r = c.cmd("EXPN list")
        assert (r.code, r.lines[0][:5]) == (500, "5.5.1")
        r = c.cmd("HELO")
        assert (r.code, r.lines[0][:5]) == (501, "5.5.4")
        assert c.cmd("helo client.example.com").code == 250
        r = c.cmd("QUIT")
        assert r.code == 221
        assert c.closed()


def test_starttls_ehlo_order_before_and_after(server, certs):
    s = server({"sub": auth_keys(certs)})
    with RawSmtp(s.port()) as c:
        r = c.cmd("EHLO client")
        assert r.lines[1:] == ["STARTTLS", "SIZE 1048576", "PIPELINING", "8BITMIME",
                               "ENHANCEDSTATUSCODES"]
        r = c.cmd("AUTH PLAIN " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
        assert (r.code, r.lines[0]) == (530, "5.7.0 Must issue STARTTLS first")
        r = c.cmd("MAIL FROM:<app@example.com>")
        assert (r.code, r.lines[0]) == (530, "5.7.0 Must issue STARTTLS first")
        c.starttls(certs.client_context())
        r = c.cmd("EHLO client")
        assert r.lines[1:] == ["AUTH PLAIN LOGIN", "SIZE 1048576", "PIPELINING", "8BITMIME",
                               "ENHANCEDSTATUSCODES"]
        r = c.cmd("STARTTLS")
        assert r.code == 503
        r = c.cmd("MAIL FROM:<app@example.com>")
        assert (r.code, r.lines[0]) == (530, "5.7.0 Authentication required")


def test_bad_sequence_syntax_and_unknown(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        r = c.cmd("MAIL FROM:<app@example.com>")
        assert (r.code, r.lines[0][:5]) == (503, "5.5.1")
        c.cmd("EHLO client")
        for line, code, enh in [
            ("RCPT TO:<dest@example.org>", 503, "5.5.1"),
            ("DATA", 503, "5.5.1"),
            ("MAIL FROM:app@example.com", 501, "5.5.4"),
            ("MAIL FROM:<not an address>", 501, "5.5.4"),
            ("MAIL TO:<app@example.com>", 501, "5.5.4"),
            ("MAIL FROM:<app@example.com> SIZE=abc", 501, "5.5.4"),
            ("MAIL FROM:<app@example.com> SMTPUTF8", 555, "5.5.4"),
            ("BOGUS", 500, "5.5.1"),
            ("STARTTLS", 502, "5.5.1"),
            ("AUTH PLAIN", 503, "5.5.1"),
        ]:
            r = c.cmd(line)
            assert (r.code, r.lines[0][:5]) == (code, enh), (line, r)
        assert c.cmd("MAIL FROM:<app@example.com> BODY=8BITMIME SIZE=100").code == 250
        r = c.cmd("MAIL FROM:<app@example.com>")
        assert (r.code, r.lines[0][:5]) == (503, "5.5.1")
        r = c.cmd("RCPT TO:<>")
        assert (r.code, r.lines[0][:5]) == (501, "5.5.4")
        assert c.cmd("RCPT TO:<dest@example.org>").code == 250
        r = c.cmd("DATA now")
        assert (r.code, r.lines[0][:5]) == (501, "5.5.4")
        assert c.cmd("RSET").code == 250
        r = c.cmd("DATA")
        assert (r.code, r.lines[0][:5]) == (503, "5.5.1")


def test_too_many_errors_closes(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        for _ in range(19):
            assert c.cmd("BOGUS").code == 500
        c.send("BOGUS\r\n")
        assert c.reply().code == 500
        r = c.reply()
        assert (r.code, r.lines[0][:5]) == (421, "4.7.0")
        assert c.closed()


def test_queued_message_lands_in_outbox(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        msg = message(subject="Queued", body="First line\r\n..leading dot\r\nlast\r\n")
        sid = queued_id(transaction(c, msg))
        assert len(sid) == 32
    eml = eml_by_id(s.dir, sid)
    assert eml["Subject"] == "Queued"
    assert eml["From"] == "App <app@example.com>"
    assert eml["To"] == "dest@example.org"
    assert eml.get_content() == "First line\n.leading dot\nlast\n"   # dot-unstuffed


def test_pipelining_in_order_single_write(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.send("EHLO client\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<a@example.org>\r\n"
               "RCPT TO:<nope>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        codes = [c.reply().code for _ in range(6)]
        assert codes == [250, 250, 250, 501, 250, 354]
        c.send(message(to="a@example.org, b@example.org") + ".\r\nNOOP\r\nQUIT\r\n")
        sid = queued_id(c.reply())
        assert c.reply().code == 250
        assert c.reply().code == 221
    eml = eml_by_id(s.dir, sid)
    assert eml["To"] == "a@example.org, b@example.org"


def test_pipelined_replies_arrive_in_one_segment(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.send("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n")
        time.sleep(0.3)
        data = c.sock.recv(65536)
        assert data == b"250 2.0.0 OK\r\n" * 4


def test_line_limit(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        ok = "NOOP " + "x" * (998 - 5)
        assert c.cmd(ok).code == 250           # 998 + CRLF = 1000 bytes
        r = c.cmd(ok + "x")                    # 1001 bytes
        assert (r.code, r.lines[0]) == (500, "5.5.2 Line too long")
        r = c.cmd("NOOP " + "y" * 5000)
        assert (r.code, r.lines[0]) == (500, "5.5.2 Line too long")
        assert c.cmd("NOOP").code == 250
        # In DATA: the message is refused after the terminator, the session goes on.
        assert c.cmd("MAIL FROM:<app@example.com>").code == 250
        assert c.cmd("RCPT TO:<dest@example.org>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message(body="z" * 1200 + "\r\n") + ".\r\n")
        r = c.reply()
        assert (r.code, r.lines[0]) == (500, "5.5.2 Line too long")
        assert queued_id(transaction(c)) != ""


def test_size_limits(server):
    s = server({"plain": {"max_message_size": "2KB"}})
    with RawSmtp(s.port()) as c:
        r = c.cmd("EHLO client")
        assert "SIZE 2048" in r.lines
        r = c.cmd("MAIL FROM:<app@example.com> SIZE=4096")
        assert (r.code, r.lines[0]) == (552, "5.3.4 Message too big")
        assert c.cmd("MAIL FROM:<app@example.com> SIZE=1000").code == 250
        assert c.cmd("RCPT TO:<dest@example.org>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message(body="0123456789abcdef\r\n" * 400) + ".\r\n")
        r = c.reply()
        assert (r.code, r.lines[0]) == (552, "5.3.4 Message too big")
        assert queued_id(transaction(c)) != ""
    assert len(wait_outbox(s.dir, 1)) == 1


def test_idle_timeout(server):
    s = server({"plain": {"idle_timeout": "2s"}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        t = time.time()
        r = c.reply()
        assert (r.code, r.lines[0]) == (421, f"4.4.2 {HOSTNAME} Idle timeout, closing connection")
        assert 1.5 < time.time() - t < 5
        assert c.closed()


def test_idle_timeout_in_data(server):
    s = server({"plain": {"idle_timeout": "2s"}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.cmd("MAIL FROM:<app@example.com>")
        c.cmd("RCPT TO:<dest@example.org>")
        c.cmd("DATA")
        c.send("Subject: partial\r\n")
        assert c.reply().code == 421
    time.sleep(0.5)
    assert outbox_files(s.dir) == []


# --- authentication ------------------------------------------------------------------------

def smtp_tls(port, certs):
    c = smtplib.SMTP("127.0.0.1", port, timeout=15)
    c.starttls(context=certs.client_context())
    return c


def test_smtplib_starttls_auth_plain(server, certs):
    s = server({"sub": auth_keys(certs)})
    with smtp_tls(s.port(), certs) as c:
        code, _ = c.login("alice", PASSWORD)
        assert code == 235
        c.sendmail("app@example.com", ["dest@example.org"], message().encode())
    wait_outbox(s.dir, 1)
    ok = s.daemon.wait_log("smtp_auth_ok")
    assert ok["user"] == "alice" and len(ok["session_id"]) == 16
    tls = s.daemon.wait_log("smtp_tls_established")
    assert tls["session_id"] == ok["session_id"]
    assert PASSWORD.encode() not in s.daemon.log_bytes()


def test_smtplib_auth_login_with_and_without_initial_response(server, certs):
    s = server({"sub": auth_keys(certs)})
    for initial in (True, False):
        with smtp_tls(s.port(), certs) as c:
            c.ehlo()
            c.user, c.password = "alice", PASSWORD
            code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=initial)
            assert code == 235
            c.sendmail("app@example.com", ["dest@example.org"], message().encode())
    wait_outbox(s.dir, 2)


def test_auth_plain_without_initial_response_and_crypt_hash(server, certs):
    hashed = subprocess.run(["openssl", "passwd", "-6", "hashed-secret"], check=True,
                            capture_output=True, text=True).stdout.strip()
    s = server({"sub": auth_keys(certs, smtp_user=[f"alice {PASSWORD}", f"bob {hashed}"])})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.starttls(certs.client_context())
        c.cmd("EHLO client")
        r = c.cmd("AUTH PLAIN")
        assert (r.code, r.lines[0]) == (334, "")
        r = c.cmd(base64.b64encode(b"\0bob\0hashed-secret").decode())
        assert r.code == 235, r
        r = c.cmd("AUTH PLAIN")
        assert r.code == 503
        assert queued_id(transaction(c))
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.starttls(certs.client_context())
        c.cmd("EHLO client")
        r = c.cmd("AUTH PLAIN " + base64.b64encode(f"\0bob\0{hashed}".encode()).decode())
        assert r.code == 535       # the hash itself is not the password


def test_auth_failures_cancel_encoding_delay(server, certs):
    s = server({"sub": auth_keys(certs)})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.starttls(certs.client_context())
        c.cmd("EHLO client")
        t = time.time()
        r = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode())
        assert (r.code, r.lines[0]) == (535, "5.7.8 Authentication failed")
        assert time.time() - t >= 0.19
        r = c.cmd("AUTH PLAIN !!!notbase64")
        assert (r.code, r.lines[0][:5]) == (501, "5.5.2")
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("*")
        assert (r.code, r.lines[0][:5]) == (501, "5.5.2")
        assert c.cmd("AUTH PLAIN").code == 334
        r = c.cmd("*")
        assert (r.code, r.lines[0][:5]) == (501, "5.5.2")
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 504
        r = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0nobody\0" + PASSWORD.encode()).decode())
        assert r.code == 535
        r = c.cmd("AUTH PLAIN " + base64.b64encode(b"mallory\0alice\0" + PASSWORD.encode()).decode())
        assert r.code == 535 or r.code == 501
        assert c.cmd("NOOP").code == 250
    failed = s.logs("smtp_auth_failed")
    assert len(failed) >= 2 and all(len(l["session_id"]) == 16 for l in failed)
    assert b"wrong" not in s.daemon.log_bytes()


def test_auth_throttle_per_address(server, certs):
    s = server({"sub": auth_keys(certs, max_auth_failures=3)})
    bad = "AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode()
    good = "AUTH PLAIN " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.starttls(certs.client_context())
        c.cmd("EHLO client")
        for _ in range(3):
            assert c.cmd(bad).code == 535
        r = c.cmd(good)
        assert (r.code, r.lines[0][:5]) == (454, "4.7.0")
    with RawSmtp(s.port()) as c:   # a new session from the same address is throttled too
        c.cmd("EHLO client")
        c.starttls(certs.client_context())
        c.cmd("EHLO client")
        assert c.cmd(good).code == 454


def test_starttls_discards_injected_commands(server, certs):
    s = server({"sub": auth_keys(certs)})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.send("STARTTLS\r\nNOOP\r\n")
        assert c.reply().code == 220
        c.sock = certs.client_context().wrap_socket(c.sock, server_hostname="localhost")
        c.buf = b""
        r = c.cmd("EHLO again")       # the first reply over TLS answers this, not the NOOP
        assert r.code == 250 and r.lines[0].endswith("Hello again"), r


def test_implicit_tls_listener(server, certs):
    s = server({"smtps": tls_keys(certs, tls="implicit", auth_required="smtp-auth",
                                  smtp_user=f"alice {PASSWORD}")})
    with smtplib.SMTP_SSL("127.0.0.1", s.port(), context=certs.client_context(), timeout=15) as c:
        code, lines = c.ehlo("client")
        assert b"STARTTLS" not in lines and b"AUTH PLAIN LOGIN" in lines
        c.login("alice", PASSWORD)
        c.sendmail("app@example.com", ["dest@example.org"], message().encode())
    wait_outbox(s.dir, 1)
    # A plaintext client on the TLS port gets nothing readable and is closed on timeout.
    with socket.create_connection(("127.0.0.1", s.port()), timeout=5) as raw:
        raw.sendall(b"EHLO plain\r\n")
        try:
            data = raw.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"220")


def test_client_certificate_auth(server, certs):
    s = server({"certs": tls_keys(certs, auth_required="client-cert", client_cert_ca=certs.ca),
                "either": tls_keys(certs, auth_required="either", client_cert_ca=certs.ca,
                                   smtp_user=f"alice {PASSWORD}")})
    ctx = certs.client_context(certs.client, certs.client_key)
    for name in ("certs", "either"):
        with RawSmtp(s.port(name)) as c:
            c.cmd("EHLO client")
            c.starttls(ctx)
            r = c.cmd("EHLO client")
            assert ("AUTH PLAIN LOGIN" in r.lines) == (name == "either")
            assert queued_id(transaction(c))
    ok = [l for l in s.logs("smtp_auth_ok") if l.get("method") == "client-cert"]
    assert len(ok) == 2 and "app.example.com" in ok[0]["subject"]
    # No certificate: refused at MAIL; with "either" a password works instead.
    with RawSmtp(s.port("certs")) as c:
        c.cmd("EHLO client")
        c.starttls(certs.client_context())
        c.cmd("EHLO client")
        r = c.cmd("MAIL FROM:<app@example.com>")
        assert (r.code, r.lines[0]) == (530, "5.7.0 Authentication required")
    with smtp_tls(s.port("either"), certs) as c:
        c.login("alice", PASSWORD)
        c.sendmail("app@example.com", ["dest@example.org"], message().encode())
    # A certificate from another CA never authenticates.
    rogue = certs.client_context(certs.rogue, certs.rogue_key)
    with RawSmtp(s.port("certs")) as c:
        c.cmd("EHLO client")
        try:
            c.starttls(rogue)
            c.cmd("EHLO client")
            r = c.cmd("MAIL FROM:<app@example.com>")
            assert r.code == 530
        except (ssl.SSLError, EOFError, ConnectionResetError, BrokenPipeError):
            pass
    wait_outbox(s.dir, 3)


# --- policy ------------------------------------------------------------------------------

def test_sender_and_recipient_policy(server):
    s = server({"plain": {"allowed_senders": ["*@Example.COM", "exact@other.example"],
                          "allowed_recipients": "*@example.org",
                          "max_recipients_per_session": 2}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        r = c.cmd("MAIL FROM:<app@evil.example>")
        assert (r.code, r.lines[0]) == (550, "5.7.1 Sender not authorized")
        r = c.cmd("MAIL FROM:<>")
        assert r.code == 550
        assert c.cmd("MAIL FROM:<Exact@Other.Example>").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<app@EXAMPLE.com>").code == 250
        r = c.cmd("RCPT TO:<someone@elsewhere.example>")
        assert (r.code, r.lines[0]) == (550, "5.7.1 Recipient not authorized")
        assert c.cmd("RCPT TO:<a@example.org>").code == 250
        assert c.cmd("RCPT TO:<b@example.org>").code == 250
        r = c.cmd("RCPT TO:<c@example.org>")
        assert (r.code, r.lines[0]) == (452, "4.5.3 Too many recipients")
        assert c.cmd("DATA").code == 354
        c.send(message(to="a@example.org, b@example.org, c@example.org") + ".\r\n")
        sid = queued_id(c.reply())
    eml = eml_by_id(s.dir, sid)
    assert eml["To"] == "a@example.org, b@example.org"
    assert s.logs("smtp_sender_rejected") and s.logs("smtp_recipient_rejected")


def test_header_from_outside_allowlist(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        r = transaction(c, message(sender="ceo@evil.example"))
        assert (r.code, r.lines[0]) == (550, "5.7.1 Sender not authorized")
        r = transaction(c, "To: dest@example.org\r\nSubject: no from\r\n\r\nbody\r\n")
        assert r.code == 550
    time.sleep(0.5)
    assert outbox_files(s.dir) == []
    line = [l for l in s.logs("smtp_sender_rejected") if l.get("where") == "header"]
    assert line and line[0]["sender"] == "ceo@evil.example"


def test_smuggled_bcc_goes_nowhere(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        msg = message(to="dest@example.org",
                      headers="Cc: copy@example.net\r\nBcc: spy@attacker.example\r\n")
        sid = queued_id(transaction(c, msg))
    eml = eml_by_id(s.dir, sid)
    assert eml["To"] == "dest@example.org"
    assert eml["Bcc"] is None and eml["Cc"] is None
    raw = open(os.path.join(s.dir, "outbox", sid + ".eml"), "rb").read()
    assert b"attacker" not in raw and b"copy@example.net" not in raw
    q = s.daemon.wait_log("submission_queued", submission_id=sid)
    assert q["recipients"] == 1


def test_bcc_recipient_in_no_header_of_the_eml(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        msg = message(to="A <a@example.org>", headers="Cc: b@example.org\r\n")
        sid = queued_id(transaction(c, msg, rcpts=("a@example.org", "b@example.org",
                                                   "hidden@example.org")))
        msg = message(to="undisclosed-recipients:;")
        only_bcc = queued_id(transaction(c, msg, rcpts=("x@example.org", "y@example.org")))
    eml = eml_by_id(s.dir, sid)
    assert eml["To"] == "a@example.org" and eml["Cc"] == "b@example.org"
    assert eml["Bcc"] is None
    raw = open(os.path.join(s.dir, "outbox", sid + ".eml"), "rb").read()
    assert b"hidden" not in raw
    assert s.daemon.wait_log("submission_queued", submission_id=sid)["recipients"] == 3
    eml = eml_by_id(s.dir, only_bcc)
    assert eml["To"] == "undisclosed-recipients:;" and eml["Cc"] is None
    raw = open(os.path.join(s.dir, "outbox", only_bcc + ".eml"), "rb").read()
    assert b"x@example.org" not in raw and b"y@example.org" not in raw


def test_message_without_body_is_malformed(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        msg = ("From: app@example.com\r\nTo: dest@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               "AAEC\r\n--b--\r\n")
        r = transaction(c, msg)
        assert r.code == 550 and r.lines[0].startswith("5.6.0 Malformed message: "), r
    assert s.logs("smtp_submission_failed")


def test_mime_charsets_nested_multipart_attachment(server):
    s = server({"plain": {}})
    msg = ("From: =?UTF-8?B?R3LDvMOfZQ==?= <app@example.com>\r\nTo: dest@example.org\r\n"
           "Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
           "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
           "--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln ist sch=F6n=\r\n..\r\n"  # stuffed
           "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>K\xc3\xb6ln</p>\r\n"
           "--inner--\r\n"
           "--outer\r\nContent-Type: application/pdf; name=report.pdf\r\n"
           "Content-Disposition: attachment; filename=report.pdf\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--outer--\r\n")
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        assert c.cmd("MAIL FROM:<app@example.com> BODY=8BITMIME").code == 250
        assert c.cmd("RCPT TO:<dest@example.org>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg.encode("latin-1") + b".\r\n")
        sid = queued_id(c.reply())
    eml = eml_by_id(s.dir, sid)
    assert eml["Subject"] == "Grüße aus Köln"
    assert eml["From"].addresses[0].display_name == "Grüße"
    text = eml.get_body(("plain",)).get_content()
    html = eml.get_body(("html",)).get_content()
    assert text.replace("\r\n", "\n").startswith("Köln ist schön.")
    assert "<p>Köln</p>" in html
    atts = list(eml.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in atts] == [("report.pdf", "application/pdf")]
    assert atts[0].get_content() == b"%PDF-1.4\n"


# --- robustness --------------------------------------------------------------------------

def test_session_limits(server):
    s = server({"plain": {"max_sessions": 3, "max_sessions_per_ip": 2}})
    a, b = RawSmtp(s.port()), RawSmtp(s.port())
    c = RawSmtp(s.port(), greet=False)
    r = c.reply()
    assert (r.code, r.lines[0][:5]) == (421, "4.7.0")
    assert c.closed()
    a.cmd("QUIT")
    a.close()
    time.sleep(0.3)
    d = RawSmtp(s.port())
    assert d.greeting.code == 220
    for x in (b, c, d):
        x.close()


def test_many_concurrent_sessions_all_delivered(server):
    s = server({"plain": {"max_sessions_per_ip": 300}}, log_level="info")
    n = 200

    def one(i):
        with smtplib.SMTP("127.0.0.1", s.port(), timeout=60) as c:
            c.sendmail("app@example.com", [f"dest{i}@example.org"],
                       message(to=f"dest{i}@example.org", subject=f"msg {i}").encode())
        return i

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        assert sorted(pool.map(one, range(n))) == list(range(n))
    files = wait_outbox(s.dir, n, timeout=60)
    assert len(files) == n
    subjects = sorted(read_eml(f)["Subject"] for f in files)
    assert subjects == sorted(f"msg {i}" for i in range(n))


def test_disconnect_mid_data_keeps_accepted_and_queues_nothing_partial(server):
    s = server({"plain": {}})
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        sid = queued_id(transaction(c, message(subject="kept")))
        assert c.cmd("MAIL FROM:<app@example.com>").code == 250
        assert c.cmd("RCPT TO:<dest@example.org>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(message(subject="lost") + "half of it\r\n")
    time.sleep(1)
    files = wait_outbox(s.dir, 1)
    assert [os.path.basename(f) for f in files] == [sid + ".eml"]
    assert not os.listdir(os.path.join(s.dir, "spool", "tmp"))
    close = [l for l in s.logs("smtp_session_close") if "DATA" in l.get("reason", "")]
    assert close


def test_garbage_and_tls_hello_do_not_disturb_others(server, certs):
    s = server({"plain": {}})
    good = RawSmtp(s.port())
    good.cmd("EHLO client")
    junk = []
    for payload in (os.urandom(5000), b"\x00\xff" * 700 + b"\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        j = socket.create_connection(("127.0.0.1", s.port()))
        j.sendall(payload)
        junk.append(j)
    # A TLS ClientHello on the plaintext port.
    raw = socket.create_connection(("127.0.0.1", s.port()), timeout=5)
    try:
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, OSError):
        pass
    assert queued_id(transaction(good))
    assert good.cmd("QUIT").code == 221
    for j in junk:
        j.close()
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        assert queued_id(transaction(c))
    wait_outbox(s.dir, 2)
    assert s.daemon.proc.poll() is None


def test_shutdown_says_421_and_finishes_transactions(server):
    s = server({"plain": {}})
    idle = RawSmtp(s.port())
    idle.cmd("EHLO client")
    busy = RawSmtp(s.port())
    busy.cmd("EHLO client")
    busy.cmd("MAIL FROM:<app@example.com>")
    busy.cmd("RCPT TO:<dest@example.org>")
    assert busy.cmd("DATA").code == 354
    busy.send("From: app@example.com\r\nSubject: during shutdown\r\n\r\n")
    time.sleep(0.2)
    s.daemon.signal(signal.SIGTERM)
    r = idle.reply()
    assert (r.code, r.lines[0][:5]) == (421, "4.3.2")
    assert idle.closed()
    busy.send("body\r\n.\r\n")
    r = busy.reply()
    assert r.code in (250, 451), r        # finished (or the relayer already left)
    r = busy.reply()
    assert (r.code, r.lines[0][:5]) == (421, "4.3.2")
    assert s.daemon.wait(timeout=20) == 0


# --- replies that depend on the relayer ----------------------------------------------------

def postmark_transport(url):
    return f"""
[transport pm]
type = postmark
api_key = pm-test-key-0123456789
base_url = {url}
timeout = 3s
"""


@pytest.fixture
def postmark():
    f = FakeProvider("postmark")
    yield f
    f.close()


def test_sync_mode_sent_transient_and_permanent(server, postmark):
    s = server({"sync": {"transport": "pm", "delivery": "sync"}},
               transports=postmark_transport(postmark.url))
    with RawSmtp(s.port(), timeout=30) as c:
        c.cmd("EHLO client")
        r = transaction(c, message(subject="sync ok"))
        assert r.code == 250 and r.lines[0].startswith("2.0.0 OK sent as "), r
        postmark.script = [("status", 503), ("status", 503)]
        r = transaction(c, message(subject="sync transient"))
        assert (r.code, r.lines[0][:5]) == (451, "4.4.1"), r
        postmark.script = [("status", 422, {"ErrorCode": 300, "Message": "Invalid email request"})]
        r = transaction(c, message(subject="sync permanent"))
        assert (r.code, r.lines[0][:5]) == (554, "5.0.0"), r
    first = postmark.requests[0].json()
    assert first["From"] == "App <app@example.com>"
    assert first["To"] == "dest@example.org"
    assert first["Subject"] == "sync ok"
    assert first["TextBody"].replace("\r\n", "\n") == "Hi there.\n"
    sent = s.logs("smtp_submission_sent")
    failed = s.logs("smtp_submission_failed")
    assert len(sent) == 1 and len(failed) == 2
    assert b"pm-test-key" not in s.daemon.log_bytes()


def test_bcc_recipient_only_in_postmark_bcc(server, postmark):
    """Header To a, Cc b; RCPT TO a, b and c: one request, c only in Bcc."""
    s = server({"plain": {"transport": "pm"}}, transports=postmark_transport(postmark.url))
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        msg = message(to="Ann <a@example.org>", headers="Cc: \"Bob B.\" <b@Example.ORG>\r\n")
        queued_id(transaction(c, msg, rcpts=("a@example.org", "b@example.org", "c@example.org")))
    body = postmark.wait_requests(1)[0].json()
    assert body["To"] == "a@example.org"
    assert body["Cc"] == "b@example.org"
    assert body["Bcc"] == "c@example.org"
    time.sleep(0.3)
    assert len(postmark.requests) == 1


@pytest.mark.skipif(not IS_ROOT, reason="needs a spool the relayer cannot write")
def test_queue_unavailable_451(server):
    s = server({"plain": {}})
    tmp = os.path.join(s.dir, "spool", "tmp")
    mode = os.stat(tmp).st_mode
    os.chmod(tmp, 0)
    try:
        with RawSmtp(s.port()) as c:
            c.cmd("EHLO client")
            r = transaction(c)
            assert (r.code, r.lines[0]) == (451, "4.3.0 Queue unavailable, try again later"), r
    finally:
        os.chmod(tmp, mode)
    time.sleep(0.3)
    assert outbox_files(s.dir) == []


def test_every_smtpd_log_line_has_a_session_id(server, certs):
    s = server({"sub": auth_keys(certs)})
    with smtp_tls(s.port(), certs) as c:
        c.login("alice", PASSWORD)
        c.sendmail("app@example.com", ["dest@example.org"], message().encode())
    wait_outbox(s.dir, 1)
    with RawSmtp(s.port()) as c:
        c.cmd("EHLO client")
        c.cmd("QUIT")
    s.daemon.wait_log("smtp_session_close")
    events = [l for l in s.logs() if l.get("proc") == "smtpd" and l["msg"].startswith("smtp_")]
    names = {l["msg"] for l in events}
    assert {"smtp_session_open", "smtp_tls_established", "smtp_auth_ok", "smtp_submission_sent",
            "smtp_session_close"} <= names
    for l in events:
        assert len(l["session_id"]) == 16 and int(l["session_id"], 16) >= 0, l


def test_reload_keeps_sessions_and_applies_new_settings(server, workdir):
    s = server({"plain": {"max_message_size": "4KB"}})
    old = RawSmtp(s.port())
    assert "SIZE 4096" in old.cmd("EHLO client").lines
    text = open(s.daemon.conf).read().replace("max_message_size = 4KB", "max_message_size = 8KB")
    s.daemon.write_conf(text)
    s.daemon.signal(signal.SIGHUP)
    s.daemon.wait_log("config_reloaded")
    time.sleep(0.3)
    with RawSmtp(s.port()) as new:
        assert "SIZE 8192" in new.cmd("EHLO client").lines
    assert "SIZE 4096" in old.cmd("EHLO client").lines
    assert queued_id(transaction(old))
    old.close()


# --- real clients: swaks and nodemailer ------------------------------------------------------

NODE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "node"))


def nodemailer_path():
    """regress/node/node_modules with nodemailer, installed from npm on first use."""
    mods = os.path.join(NODE_DIR, "node_modules")
    if not os.path.isdir(os.path.join(mods, "nodemailer")):
        if not shutil.which("npm") or not shutil.which("node"):
            pytest.skip("node/npm not installed")
        os.makedirs(NODE_DIR, exist_ok=True)
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_DIR,
                            "nodemailer@6"], capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            pytest.skip("npm install nodemailer failed: " + r.stderr[-300:])
    return mods


def test_nodemailer_text_html_attachment_to_postmark(server, certs, postmark):
    mods = nodemailer_path()
    s = server({"sub": auth_keys(certs, transport="pm")}, transports=postmark_transport(postmark.url))
    r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "smtp_nodemailer.js"),
                        str(s.port()), "alice", PASSWORD, certs.ca],
                       env={**os.environ, "NODE_PATH": mods}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["response"].startswith("250 2.0.0 OK queued as ")
    body = postmark.wait_requests(1)[0].json()
    assert body["From"] == "Ghost Blog <noreply@example.com>"
    assert body["To"] == "reader@example.org"
    assert body["ReplyTo"] == "editor@example.com"
    assert body["Subject"] == "Welcome to the blog — ünïcödé"
    assert body["TextBody"].replace("\r\n", "\n") == "Plain text body\nsecond line"
    assert body["HtmlBody"] == "<p>HTML <b>body</b> — ünïcödé</p>"
    att = body["Attachments"]
    assert len(att) == 1 and att[0]["Name"] == "notes.txt"
    assert att[0]["ContentType"] == "text/plain"
    assert base64.b64decode(att[0]["Content"]) == b"attachment content\n"


def test_nodemailer_cc_and_bcc_to_postmark(server, certs, postmark):
    """nodemailer sends Bcc in RCPT TO only: Postmark must get it in Bcc, nowhere else."""
    mods = nodemailer_path()
    s = server({"sub": auth_keys(certs, transport="pm")}, transports=postmark_transport(postmark.url))
    r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "smtp_nodemailer.js"),
                        str(s.port()), "alice", PASSWORD, certs.ca, "copy@example.org",
                        "secret1@example.org, secret2@example.net"],
                       env={**os.environ, "NODE_PATH": mods}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out["accepted"]) == ["copy@example.org", "reader@example.org",
                                       "secret1@example.org", "secret2@example.net"]
    req = postmark.wait_requests(1)[0]
    body = req.json()
    assert body["To"] == "reader@example.org"
    assert body["Cc"] == "copy@example.org"
    assert body["Bcc"] == "secret1@example.org, secret2@example.net"
    assert req.body.count(b"secret1@example.org") == 1
    assert all("secret" not in h["Value"] for h in body.get("Headers", []))


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_swaks_starttls_auth_and_attachment(server, certs):
    s = server({"sub": auth_keys(certs)})
    att = os.path.join(s.dir, "report.csv")
    with open(att, "w") as f:
        f.write("a,b\n1,2\n")
    for auth in ("PLAIN", "LOGIN"):
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{s.port()}", "--tls",
                            "--auth", auth, "--auth-user", "alice", "--auth-password", PASSWORD,
                            "--from", "app@example.com", "--to", "dest@example.org",
                            "--header", f"Subject: swaks {auth}", "--body", "swaks body",
                            "--attach-type", "text/csv", "--attach", f"@{att}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "250 2.0.0 OK queued as" in r.stdout
    files = wait_outbox(s.dir, 2)
    subjects = sorted(read_eml(f)["Subject"] for f in files)
    assert subjects == ["swaks LOGIN", "swaks PLAIN"]
    eml = read_eml(files[0])
    atts = list(eml.iter_attachments())
    assert atts and atts[0].get_content_type() == "text/csv"
