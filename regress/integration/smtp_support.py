"""Helpers for the SMTP ingress tests: configuration, certificates made with
the openssl CLI, a raw line-level SMTP client, and reading the file
transport's outbox."""
import email
import email.policy
import glob
import os
import pwd
import socket
import ssl
import subprocess
import time

from conftest import IS_ROOT, RELAY_USER

HOSTNAME = "test.posthorn.invalid"


def global_block(d, log_level="debug", extra=""):
    users = "user = _posthorn\nrelay_user = _posthorn_relay\n" if IS_ROOT else ""
    return f"""\
[global]
hostname = {HOSTNAME}
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log = stderr
log_format = json
log_level = {log_level}
{extra}
"""


def outbox_block(d, name="outbox"):
    out = os.path.join(d, "outbox")
    os.makedirs(out, exist_ok=True)
    if IS_ROOT:
        pw = pwd.getpwnam(RELAY_USER)
        os.chown(out, pw.pw_uid, pw.pw_gid)
    return f"""
[transport {name}]
type = file
directory = {out}
"""


def listener_block(name, port, **keys):
    """keys: posthorn.conf keys; lists become repeated lines."""
    defaults = {"tls": "none", "auth_required": "none", "allowed_senders": "*@example.com",
                "transport": "outbox", "delivery": "queue"}
    defaults.update(keys)
    lines = [f"[smtp {name}]", f"listen = 127.0.0.1:{port}"]
    for k, v in defaults.items():
        if v is None:
            continue
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            lines.append(f"{k} = {item}")
    return "\n" + "\n".join(lines) + "\n"


class Certs:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate
    from that CA, and a client certificate from an unrelated CA."""

    def __init__(self, d):
        self.dir = os.path.join(d, "certs")
        os.makedirs(self.dir, exist_ok=True)
        self.ca, self.ca_key = self._ca("ca", "posthorn test CA")
        self.other_ca, self.other_ca_key = self._ca("otherca", "unrelated CA")
        self.server, self.server_key = self._leaf("server", "localhost", self.ca, self.ca_key,
                                                  san="DNS:localhost,IP:127.0.0.1")
        self.client, self.client_key = self._leaf("client", "app.example.com", self.ca, self.ca_key)
        self.rogue, self.rogue_key = self._leaf("rogue", "rogue.example.com", self.other_ca,
                                                self.other_ca_key)
        for f in os.listdir(self.dir):
            os.chmod(os.path.join(self.dir, f), 0o600)

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def _ca(self, name, cn):
        crt, key = self._path(name + ".pem"), self._path(name + ".key")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={cn}",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return crt, key

    def _leaf(self, name, cn, ca, ca_key, san=None):
        crt, key, csr = (self._path(name + ".pem"), self._path(name + ".key"),
                         self._path(name + ".csr"))
        ext = self._path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        self._run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                  "-out", crt, "-days", "2", "-extfile", ext)
        return crt, key

    def client_context(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return f"Reply({self.code}, {self.lines!r})"


class RawSmtp:
    """A line-level client: send exactly the bytes a test wants, read replies."""

    def __init__(self, port, timeout=10, tls_context=None, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode()

    def reply(self):
        lines = []
        while True:
            line = self.readline()
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return Reply(int(line[:3]), lines)

    def starttls(self, ctx):
        r = self.cmd("STARTTLS")
        assert r.code == 220, r
        assert self.buf == b""
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        return r

    def closed(self, timeout=5):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def message(sender="app@example.com", to="dest@example.org", subject="Hello", body="Hi there.\r\n",
            headers=""):
    return (f"From: App <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}")


def outbox_files(d):
    return sorted(glob.glob(os.path.join(d, "outbox", "*.eml")))


def wait_outbox(d, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        files = outbox_files(d)
        if len(files) >= n:
            return files
        time.sleep(0.05)
    raise AssertionError(f"expected {n} messages in the outbox, found {len(outbox_files(d))}")


def read_eml(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def eml_by_id(d, submission_id, timeout=20):
    path = os.path.join(d, "outbox", submission_id + ".eml")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            time.sleep(0.05)
            return read_eml(path)
        time.sleep(0.05)
    raise AssertionError(f"no {path}; outbox: {outbox_files(d)}")
