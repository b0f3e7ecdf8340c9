"""Fixtures that start the real posthornd (as root when run so: privilege
separation is exercised for real) and read its JSON log."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

POSTHORND = os.environ.get("POSTHORND", os.path.abspath("../../build/posthornd"))
IS_ROOT = os.geteuid() == 0
FRONT_USER = "_posthorn"
RELAY_USER = "_posthorn_relay"


def ensure_users():
    """Create the two service users as `make install` does (CI runs as root)."""
    for name, home in ((FRONT_USER, "/var/lib/posthorn/empty"), (RELAY_USER, "/var/spool/posthorn")):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["groupadd", "--system", name], check=False)
            subprocess.run(["useradd", "--system", "-g", name, "-d", home,
                            "-s", "/usr/sbin/nologin", name], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid):
    """{name: pid} of posthornd -x NAME processes whose parent is pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if len(argv) > 2 and argv[1] == b"-x":
            out[argv[2].decode()] = int(entry)
    return out


class Daemon:
    def __init__(self, workdir, conf_text, env=None, run_as=None):
        self.dir = workdir
        self.conf = os.path.join(workdir, "posthorn.conf")
        self.log_path = os.path.join(workdir, "posthornd.log")
        self.env = dict(env or {})
        self.run_as = run_as
        self.write_conf(conf_text)
        self.proc = None
        self.logf = None

    def write_conf(self, text, mode=0o600):
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, mode)
        if self.run_as:
            os.chown(self.conf, self.run_as, self.run_as)

    def start(self, wait=True, extra_args=()):
        self.logf = open(self.log_path, "ab")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update(self.env)
        preexec = None
        if self.run_as is not None:
            uid = self.run_as

            def preexec():
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
        self.proc = subprocess.Popen([POSTHORND, "-d", "-f", self.conf, *extra_args],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=preexec)
        if wait:
            self.wait_log("posthornd_started")
        return self

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        lines = []
        for raw in data.splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"msg": "<unparsed>", "raw": raw.decode(errors="replace")})
        return lines

    def log_bytes(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def find_log(self, msg, **fields):
        for line in self.logs():
            if line.get("msg") == msg and all(line.get(k) == v for k, v in fields.items()):
                return line
        return None

    def wait_log(self, msg, timeout=10, **fields):
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.find_log(msg, **fields)
            if line:
                return line
            if self.proc.poll() is not None:
                raise AssertionError(f"posthornd exited ({self.proc.returncode}) before {msg}:\n"
                                     + self.log_bytes().decode(errors="replace"))
            time.sleep(0.05)
        raise AssertionError(f"no {msg} {fields} in log:\n" + self.log_bytes().decode(errors="replace"))

    def children(self, expect=4, timeout=5):
        deadline = time.time() + timeout
        while True:
            kids = children_of(self.proc.pid)
            if len(kids) >= expect or time.time() > deadline:
                return kids
            time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf:
            self.logf.close()


def basic_conf(d, smtp_port, http_port, extra="", user_lines=True, log_level="info"):
    users = f"user = {FRONT_USER}\nrelay_user = {RELAY_USER}\n" if user_lines else ""
    return f"""\
[global]
hostname = test.posthorn.invalid
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log = stderr
log_format = json
log_level = {log_level}

[http]
listen = 127.0.0.1:{http_port}

[transport postmark]
type = postmark
api_key = ${{env.POSTHORN_TEST_PROVIDER_KEY}}
base_url = http://127.0.0.1:9

[smtp submission]
listen = 127.0.0.1:{smtp_port}
tls = none
auth_required = none
allowed_senders = *@example.com
transport = postmark

[endpoint /api/contact]
auth = form
to = owner@example.com
from = Contact Form <noreply@example.com>
subject = Contact from {{{{.name}}}}
body = {{{{.message}}}}
required = name, message
transport = postmark
{extra}"""


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="posthorn-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon_factory(workdir):
    made = []
    if IS_ROOT:
        ensure_users()

    def make(conf_text=None, env=None, run_as=None, **kw):
        if conf_text is None:
            conf_text = basic_conf(workdir, free_port(), free_port(), **kw)
        d = Daemon(workdir, conf_text, env=env, run_as=run_as)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
