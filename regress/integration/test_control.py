"""Operations: the control socket and posthornctl(8) against the real daemon,
the queue commands with a provider held down, hostile control clients, and
what `make install`, the man pages, the example configuration and the
systemd unit must pass."""
import array
import json
import os
import pwd
import re
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

import pytest

from conftest import IS_ROOT, POSTHORND, basic_conf, free_port
from fakes import FakeProvider

POSTHORNCTL = os.environ.get("POSTHORNCTL", os.path.abspath("../../build/posthornctl"))
TOP = os.path.dirname(os.path.dirname(os.path.abspath(POSTHORND)))
SENTINEL = "pm-sentinel-4b1d9e7c2a6f8035"
ENV = {"POSTHORN_TEST_PROVIDER_KEY": SENTINEL}
FAMILIES = (
    "posthorn_submissions_received_total", "posthorn_submissions_sent_total",
    "posthorn_submissions_failed_total", "posthorn_rate_limited_total",
    "posthorn_auth_failed_total", "posthorn_spam_blocked_total",
    "posthorn_validation_failed_total", "posthorn_idempotent_replay_total",
    "posthorn_send_latency_seconds", "posthorn_queue_messages",
    "posthorn_smtp_sessions_active", "posthorn_delivery_attempts_total",
)
# imsg: 16-byte header (type u32, len u16, flags u16, peerid u32, pid u32).
IMSG_HDR = struct.Struct("=IHHII")


def imsg_type(name):
    """Imsg type numbers, read from the enum so the test follows common/proc.h."""
    with open(os.path.join(TOP, "common", "proc.h")) as f:
        text = f.read()
    body = text[text.index("enum ImsgType"):]
    names = re.findall(r"^\s*(IMSG_[A-Z_]+)\s*[,=]", body, re.M)
    return names.index(name)


def frame(type_, payload=b"", flags=0):
    return IMSG_HDR.pack(type_, IMSG_HDR.size + len(payload), flags, 0, 0) + payload


def command_payload(arg="", flag=0):
    data = arg.encode()
    return struct.pack("=I", len(data)) + data + bytes([flag])


def drop_to(uid, gid, groups=()):
    def preexec():
        os.setgroups(list(groups))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    return preexec


class Ctl:
    def __init__(self, sock):
        self.sock = sock

    def run(self, *args, preexec=None, timeout=30):
        return subprocess.run([POSTHORNCTL, "-s", self.sock, *args], capture_output=True,
                              text=True, timeout=timeout, preexec_fn=preexec)

    def ok(self, *args):
        r = self.run(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert SENTINEL not in r.stdout + r.stderr
        return r.stdout

    def fails(self, *args, preexec=None):
        r = self.run(*args, preexec=preexec)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert SENTINEL not in r.stdout + r.stderr
        return r.stderr

    def json(self, *args):
        return json.loads(self.ok("-j", *args))


@pytest.fixture
def started(daemon_factory, workdir):
    d = daemon_factory(env=ENV).start()
    d.children()
    return d, Ctl(os.path.join(workdir, "posthorn.sock"))


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- status, stats, transports ---------------------------------------------------------------

def test_show_status(started, workdir):
    d, ctl = started
    kids = d.children()
    st = ctl.json("show", "status")
    assert st["version"] and st["generation"] == 1
    assert st["uptime"] >= 0 and st["hostname"] == "test.posthorn.invalid"
    procs = {p["name"]: p["pid"] for p in st["processes"]}
    assert procs == {"parent": d.proc.pid, **kids}
    kinds = sorted((l["kind"], l["name"]) for l in st["listeners"])
    assert kinds == [("control", "control"), ("http", "http"), ("smtp", "submission")]
    assert {"kind": "control", "name": "control",
            "address": os.path.join(workdir, "posthorn.sock")} in st["listeners"]
    text = ctl.ok("show", "status")
    assert re.search(r"^generation\s+1$", text, re.M)
    assert re.search(rf"^processes\s+parent\s+{d.proc.pid}$", text, re.M)
    for name, pid in kids.items():
        assert re.search(rf"^\s+{name}\s+{pid}$", text, re.M), text
    # Unambiguous prefixes, word by word.
    assert ctl.json("sh", "statu")["generation"] == 1
    assert "ambiguous" in ctl.fails("sh", "stat")
    assert "ambiguous" in ctl.fails("re")
    assert "unknown command" in ctl.fails("frobnicate")
    assert "usage" in ctl.fails("show", "status", "extra")


def test_show_stats(started):
    d, ctl = started
    text = ctl.ok("show", "stats")
    for family in FAMILIES:
        assert f"# HELP {family} " in text, family
        assert re.search(rf"^# TYPE {family} (counter|gauge|histogram)$", text, re.M), family
    assert re.search(r"^posthorn_queue_messages 0$", text, re.M)
    assert re.search(r"^posthorn_smtp_sessions_active 0$", text, re.M)
    snap = ctl.json("sh", "stats")
    assert snap["version"] == 1 and "metrics" in snap
    assert snap["metrics"]["posthorn_queue_messages"] == [{"labels": [], "value": 0}]


def test_show_transports_pause_resume(started):
    d, ctl = started
    t = ctl.json("show", "transports")["transports"]
    assert t == [{"name": "postmark", "type": "postmark", "state": "active", "in_flight": 0,
                  "max_inflight": 8, "queued": 0}]
    assert re.search(r"^postmark\s+postmark\s+active\s+0/8\s+0$", ctl.ok("sh", "tr"), re.M)
    assert re.search(r"^postmark\s+postmark\s+paused", ctl.ok("pause", "delivery"), re.M)
    assert ctl.json("show", "transports")["transports"][0]["state"] == "paused"
    assert re.search(r"^postmark\s+postmark\s+active", ctl.ok("resume", "del", "postmark"), re.M)
    ctl.ok("pa", "d", "postmark")
    assert ctl.json("show", "transports")["transports"][0]["state"] == "paused"
    ctl.ok("resume", "delivery")
    assert ctl.json("show", "transports")["transports"][0]["state"] == "active"
    assert "no such transport" in ctl.fails("pause", "delivery", "nosuch")
    d.wait_log("delivery_paused", transport="all")
    d.wait_log("delivery_resumed", transport="postmark")
    assert d.find_log("control_command", command="pause", arg="postmark")


def test_queue_commands_refuse_bad_ids(started):
    d, ctl = started
    assert "not a submission id" in ctl.fails("show", "message", "../../etc/passwd")
    assert "not a submission id" in ctl.fails("show", "message", "all")
    assert "submission id or" in ctl.fails("remove", "../queue/x")
    missing = "0123456789abcdef0123456789abcdef"
    assert "no message" in ctl.fails("show", "message", missing)
    assert "no message" in ctl.fails("schedule", missing)
    assert "no message" in ctl.fails("remove", missing)
    assert ctl.ok("show", "queue").strip() == "the queue is empty"
    assert ctl.json("schedule", "all") == {"scheduled": 0}
    assert ctl.json("remove", "all") == {"removed": 0}


# --- reload and logging ----------------------------------------------------------------------

def test_reload_good_and_bad(started, workdir):
    d, ctl = started
    good = open(d.conf).read()
    out = ctl.ok("reload")
    assert out.strip() == "configuration reloaded, generation 2"
    d.wait_log("config_reloaded", generation=2)
    assert ctl.json("show", "status")["generation"] == 2
    assert ctl.json("reload") == {"generation": 3}

    d.write_conf(good + "bogus_key = 1\n[nonsense]\n")
    r = ctl.run("reload")
    assert r.returncode == 1
    assert re.search(r"posthorn\.conf:\d+: bogus_key: ", r.stderr), r.stderr
    assert "reload failed: 2 errors" in r.stderr
    r = ctl.run("-j", "reload")
    assert r.returncode == 1
    errors = json.loads(r.stdout)["errors"]
    assert len(errors) == 2 and any("bogus_key" in e for e in errors)
    # The old configuration stays; the daemon is fine.
    assert ctl.json("show", "status")["generation"] == 3
    assert d.proc.poll() is None
    d.write_conf(good)
    assert ctl.json("reload") == {"generation": 4}


def test_log_verbose_and_brief(started):
    d, ctl = started

    def debug_lines(command):
        return [l for l in d.logs() if l.get("msg") == "control_command"
                and l.get("command") == command and l.get("level") == "debug"]

    ctl.ok("show", "queue")
    time.sleep(0.2)
    assert not debug_lines("show_queue")          # info level: no debug lines
    assert not d.find_log("relayer_configured")   # a debug line of the relayer
    assert ctl.ok("log", "verbose") == ""
    d.wait_log("log_verbosity", verbose=True)
    ctl.ok("show", "transports")
    wait_for(lambda: debug_lines("show_transports"), what="debug line after log verbose")
    # Every process got the level, not only control.
    ctl.ok("reload")
    d.wait_log("relayer_configured", generation=2)
    assert ctl.ok("l", "b") == ""
    d.wait_log("log_verbosity", verbose=False)
    ctl.ok("show", "status")
    time.sleep(0.3)
    assert not debug_lines("show_status")


# --- who may connect -------------------------------------------------------------------------

@pytest.mark.skipif(not IS_ROOT, reason="needs root to act as other users")
def test_non_member_refused(started, workdir):
    d, ctl = started
    nobody = pwd.getpwnam("nobody")
    as_nobody = drop_to(nobody.pw_uid, nobody.pw_gid)
    # The socket's mode keeps others out...
    assert "Permission denied" in ctl.fails("show", "status", preexec=as_nobody)
    # ...and behind it the control process checks the peer's credentials itself.
    sock = os.path.join(workdir, "posthorn.sock")
    os.chmod(sock, 0o666)
    assert "permission denied" in ctl.fails("show", "status", preexec=as_nobody)
    d.wait_log("control_refused", uid=nobody.pw_uid)
    # A member of the socket's group is served, by its supplementary groups or its gid.
    front_gid = os.stat(sock).st_gid
    ctl_member = Ctl(sock)
    assert ctl_member.run("show", "status",
                          preexec=drop_to(nobody.pw_uid, nobody.pw_gid, [front_gid])).returncode == 0
    assert ctl_member.run("show", "status",
                          preexec=drop_to(nobody.pw_uid, front_gid)).returncode == 0
    os.chmod(sock, 0o660)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to act as other users")
def test_unprivileged_daemon_serves_its_own_user(daemon_factory, workdir):
    nobody = pwd.getpwnam("nobody")
    os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
    d = daemon_factory(env=ENV, run_as=nobody.pw_uid,
                       conf_text=basic_conf(workdir, free_port(), free_port(), user_lines=False))
    d.start()
    ctl = Ctl(os.path.join(workdir, "posthorn.sock"))
    same = drop_to(nobody.pw_uid, nobody.pw_uid)
    r = ctl.run("-j", "show", "status", preexec=same)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["privileged"] is False
    os.chmod(ctl.sock, 0o666)
    other = drop_to(1, 1)  # daemon(1): neither root, nor the daemon's user or group
    r = ctl.run("show", "status", preexec=other)
    assert r.returncode == 1 and "permission denied" in r.stderr


def test_connection_cap_per_uid(started):
    d, ctl = started
    held = []
    try:
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX)
            s.connect(ctl.sock)
            held.append(s)
        time.sleep(0.3)
        assert "too many connections" in ctl.fails("show", "status")
    finally:
        for s in held:
            s.close()
    wait_for(lambda: ctl.run("show", "status").returncode == 0, what="a free slot")


# --- hostile clients -------------------------------------------------------------------------

def garbage_clients(sock_path, n=100):
    show_status = imsg_type("IMSG_CTL_SHOW_STATUS")
    show_stats = imsg_type("IMSG_CTL_SHOW_STATS")
    show_message = imsg_type("IMSG_CTL_SHOW_MESSAGE")
    submit = imsg_type("IMSG_SUBMIT")
    kinds = [
        lambda: os.urandom(1 + (os.urandom(1)[0] % 200)),
        lambda: IMSG_HDR.pack(show_status, 3, 0, 0, 0),                    # len < header
        lambda: IMSG_HDR.pack(show_status, 65535, 0, 0, 0) + b"x" * 100,   # len > max
        lambda: frame(9999, command_payload()),                             # unknown type
        lambda: frame(submit, struct.pack("=Q", 1)),                        # not a client's
        lambda: frame(imsg_type("IMSG_CTL_REPLY"), b"\0" * 13),             # an answer
        lambda: frame(show_message, b"\xff\xff\xff\xff"),                   # bad string
        lambda: frame(show_message, command_payload("a" * 5000)),           # arg too long
        lambda: frame(show_status, command_payload("", 7)),                 # bad flag
        lambda: frame(show_status, command_payload() + b"trailing"),
        lambda: frame(show_status, command_payload(), flags=1),             # says fd, has none
        lambda: frame(show_stats, command_payload()) + frame(show_status, command_payload()),
        lambda: frame(show_stats, command_payload()),                       # then hang up
        lambda: b"",                                                        # connect, close
    ]
    for i in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock_path)
        data = kinds[i % len(kinds)]()
        if i % 7 == 3:
            # A descriptor the daemon did not ask for.
            fds = array.array("i", [s.fileno()])
            s.sendmsg([frame(show_status, command_payload())],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        elif data:
            try:
                s.sendall(data)
            except OSError:
                pass
        s.close()


def test_garbage_clients_only_lose_themselves(started):
    d, ctl = started
    kids = d.children()
    garbage_clients(ctl.sock, 100)
    st = ctl.json("show", "status")
    assert {p["name"]: p["pid"] for p in st["processes"]} == {"parent": d.proc.pid, **kids}
    assert d.children() == kids
    assert d.proc.poll() is None
    assert not d.find_log("child_exited")
    assert d.find_log("control_client_closed")
    # Still fully working: a command that goes through the relayer, and statistics.
    ctl.ok("show", "queue")
    ctl.ok("show", "stats")


def test_client_gone_mid_answer(started):
    d, ctl = started
    for type_ in ("IMSG_CTL_SHOW_STATS", "IMSG_CTL_SHOW_QUEUE", "IMSG_CTL_RELOAD"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(ctl.sock)
        s.sendall(frame(imsg_type(type_), command_payload()))
        s.close()
    d.wait_log("config_reloaded", generation=2)
    assert ctl.json("show", "status")["generation"] == 2
    assert d.proc.poll() is None


# --- the queue, with a provider that answers 503 ----------------------------------------------

@pytest.fixture
def held(daemon_factory, workdir):
    """A daemon whose postmark transport points at a provider answering 503."""
    fake = FakeProvider("postmark")
    fake.default = ("status", 503, {"ErrorCode": 1, "Message": "unavailable"})
    smtp_port = free_port()
    conf = basic_conf(workdir, smtp_port, free_port()).replace(
        "base_url = http://127.0.0.1:9", f"base_url = {fake.url}")
    d = daemon_factory(conf, env=ENV).start()
    yield d, Ctl(os.path.join(workdir, "posthorn.sock")), fake, smtp_port
    fake.close()


def test_pause_holds_sync_deliveries(daemon_factory, workdir):
    fake = FakeProvider("postmark")
    http_port = free_port()
    conf = basic_conf(workdir, free_port(), http_port).replace(
        "base_url = http://127.0.0.1:9", f"base_url = {fake.url}")
    d = daemon_factory(conf, env=ENV).start()
    ctl = Ctl(os.path.join(workdir, "posthorn.sock"))

    def post():
        data = urllib.parse.urlencode({"name": "Ada", "message": "hello"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/contact", data=data,
                                     headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        ctl.ok("pause", "delivery", "postmark")
        assert post() == 502
        assert fake.requests == []
        ctl.ok("resume", "delivery", "postmark")
        assert post() == 200
        assert len(fake.wait_requests(1)) == 1
    finally:
        fake.close()


def send_mail(port, subject="queued", body="the body of the message\n"):
    m = EmailMessage()
    m["From"] = "App <app@example.com>"
    m["To"] = "you@example.org"
    m["Subject"] = subject
    m.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as s:
        s.send_message(m, from_addr="app@example.com", to_addrs=["you@example.org"])


def queued_ids(ctl):
    return [m["id"] for m in ctl.json("show", "queue")["messages"]]


def test_queue_show_schedule_pause_deliver(held, workdir):
    d, ctl, fake, port = held
    send_mail(port, subject="first")
    fake.wait_requests(1)
    d.wait_log("delivery_retry_scheduled")
    (msg_id,) = queued_ids(ctl)
    q = ctl.json("show", "queue")["messages"][0]
    assert q["transport"] == "postmark" and q["attempts"] == 1 and q["state"] == "waiting"
    assert "503" in q["last_error"] and q["source"] == "smtp:submission"
    table = ctl.ok("show", "queue")
    assert re.search(rf"^{msg_id}\s+\d+s\s+postmark\s+1\s+in \d+s\s+.*503", table, re.M), table

    m = ctl.json("show", "message", msg_id)
    assert m["envelope_from"] == "app@example.com" and m["recipients"] == ["you@example.org"]
    assert m["subject"] == "first" and m["attempts"] == 1
    assert "text_body" not in m and m["text_size"] > 0
    assert "the body of the message" not in ctl.ok("show", "message", msg_id)
    assert "the body of the message" in ctl.ok("-v", "show", "message", msg_id)
    assert ctl.json("-v", "show", "message", msg_id)["text_body"].startswith("the body")

    # schedule: due now, whatever the backoff.
    assert ctl.ok("schedule", msg_id).strip() == "1 message scheduled"
    fake.wait_requests(2)
    d.wait_log("delivery_attempt", attempt=2)

    # pause: nothing new starts, even when due.
    ctl.ok("pause", "delivery", "postmark")
    d.wait_log("delivery_retry_scheduled", attempts=2)
    ctl.ok("schedule", "all")
    time.sleep(1.5)
    assert len(fake.requests) == 2
    assert ctl.json("show", "queue")["messages"][0]["state"] == "paused"
    assert ctl.json("show", "transports")["transports"][0]["queued"] == 1

    # The provider recovers; resume delivers what is due.
    fake.default = ("ok",)
    ctl.ok("resume", "delivery")
    fake.wait_requests(3)
    wait_for(lambda: queued_ids(ctl) == [], what="an empty queue")
    stats = ctl.ok("show", "stats")
    assert re.search(r'^posthorn_delivery_attempts_total\{transport="postmark",result="transient"\} 2$',
                     stats, re.M), stats
    assert re.search(r'^posthorn_delivery_attempts_total\{transport="postmark",result="sent"\} 1$',
                     stats, re.M)
    assert re.search(r'^posthorn_submissions_sent_total\{endpoint="smtp:submission",transport="postmark"\} 1$',
                     stats, re.M)
    assert re.search(r'^posthorn_send_latency_seconds_count\{endpoint="smtp:submission",transport="postmark"\} 1$',
                     stats, re.M)
    assert re.search(r"^posthorn_queue_messages 0$", stats, re.M)


def test_queue_remove(held, workdir):
    d, ctl, fake, port = held
    for i in range(3):
        send_mail(port, subject=f"m{i}")
    wait_for(lambda: len(queued_ids(ctl)) == 3, what="three queued messages")
    ids = queued_ids(ctl)
    spool = os.path.join(workdir, "spool", "queue")
    assert sorted(f[:-5] for f in os.listdir(spool)) == sorted(ids)
    assert ctl.ok("remove", ids[0]).strip() == "1 message removed"
    assert sorted(queued_ids(ctl)) == sorted(ids[1:])
    assert not os.path.exists(os.path.join(spool, ids[0] + ".json"))
    d.wait_log("submission_removed", submission_id=ids[0])
    assert "no message" in ctl.fails("show", "message", ids[0])
    assert ctl.json("remove", "all") == {"removed": 2}
    assert queued_ids(ctl) == [] and os.listdir(spool) == []
    stats = ctl.ok("show", "stats")
    assert re.search(r"^posthorn_queue_messages 0$", stats, re.M)


def read_lines(proc, out, stop):
    for line in proc.stdout:
        out.append(line.rstrip("\n"))
        if stop.is_set():
            break


@pytest.mark.parametrize("as_json", [False, True])
def test_monitor_streams_relay_events(held, as_json):
    d, ctl, fake, port = held
    args = [POSTHORNCTL, "-s", ctl.sock] + (["-j"] if as_json else []) + ["monitor"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, stop = [], threading.Event()
    t = threading.Thread(target=read_lines, args=(proc, lines, stop), daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        send_mail(port)
        wait_for(lambda: any("delivery_retry_scheduled" in l for l in lines), what="events")
        joined = "\n".join(lines)
        for event in ("submission_queued", "delivery_attempt", "delivery_retry_scheduled"):
            assert event in joined, joined
        if as_json:
            events = [json.loads(l) for l in lines]
            attempt = [e for e in events if e["msg"] == "delivery_attempt"][0]
            assert attempt["proc"] == "relayer" and attempt["result"] == "transient"
        else:
            assert re.search(r" relayer: delivery_attempt .*result=transient", joined), joined
        assert SENTINEL not in joined
    finally:
        stop.set()
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0
    # The monitor went away cleanly; the daemon still answers.
    ctl.ok("show", "status")


# --- installation and documentation ---------------------------------------------------------

def test_make_install_layout():
    dest = tempfile.mkdtemp(prefix="posthorn-install-")
    try:
        r = subprocess.run(["make", "-C", TOP, "--no-print-directory", "install", f"DESTDIR={dest}"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        want = {
            "usr/local/sbin/posthornd": 0o555,
            "usr/local/sbin/posthornctl": 0o555,
            "usr/local/share/man/man5/posthorn.conf.5": 0o444,
            "usr/local/share/man/man8/posthornd.8": 0o444,
            "usr/local/share/man/man8/posthornctl.8": 0o444,
            "etc/posthorn/posthorn.conf.example": 0o644,
            "lib/systemd/system/posthornd.service": 0o644,
            "usr/local/share/posthorn/rc.d/openbsd/posthornd": 0o555,
            "usr/local/share/posthorn/rc.d/freebsd/posthornd": 0o555,
        }
        for path, mode in want.items():
            st = os.stat(os.path.join(dest, path))
            assert st.st_mode & 0o7777 == mode, (path, oct(st.st_mode))
        for path, mode in {"etc/posthorn": 0o755, "var/lib/posthorn/empty": 0o755,
                           "var/spool/posthorn": 0o700}.items():
            st = os.stat(os.path.join(dest, path))
            assert os.path.isdir(os.path.join(dest, path)) and st.st_mode & 0o7777 == mode, path
        for path in ("lib/systemd/system/posthornd.service",
                     "usr/local/share/posthorn/rc.d/openbsd/posthornd",
                     "usr/local/share/posthorn/rc.d/freebsd/posthornd"):
            text = open(os.path.join(dest, path)).read()
            assert "@SBINDIR@" not in text and "/usr/local/sbin/posthornd" in text, path
        # The installed binaries are the built ones.
        for prog in ("posthornd", "posthornctl"):
            with open(os.path.join(TOP, "build", prog), "rb") as a, \
                    open(os.path.join(dest, "usr/local/sbin", prog), "rb") as b:
                assert a.read() == b.read(), prog
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_example_configuration_passes_check():
    path = os.path.join(TOP, "etc", "posthorn.conf")
    live = "\n".join(l for l in open(path) if not l.lstrip().startswith(";"))
    names = sorted(set(re.findall(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}", live)))
    assert names, "the example names its secrets as ${env.NAME}"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update({n: f"example-{n.lower()}-0123456789abcdef" for n in names})
    r = subprocess.run([POSTHORND, "-n", "-f", path], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "configuration OK\n"
    # Without them it names every one that is missing.
    r = subprocess.run([POSTHORND, "-n", "-f", path], capture_output=True, text=True,
                       env={"PATH": env["PATH"]}, timeout=30)
    assert r.returncode == 1
    for n in names:
        assert n in r.stderr


def test_man_pages_lint_clean():
    if not shutil.which("mandoc"):
        pytest.skip("mandoc is not installed")
    man = os.path.join(TOP, "man")
    pages = sorted(os.path.join(man, p) for p in os.listdir(man) if re.match(r".*\.[0-9]$", p))
    assert {os.path.basename(p) for p in pages} >= {"posthornd.8", "posthornctl.8",
                                                    "posthorn.conf.5"}
    for page in pages:
        r = subprocess.run(["mandoc", "-Tlint", "-Wwarning", page], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout + r.stderr == "", (page, r.stdout + r.stderr)
        text = open(page).read()
        for section in ("NAME", "DESCRIPTION", "FILES", "SEE ALSO"):
            assert f".Sh {section}" in text, (page, section)
        if page.endswith(".8"):
            for section in ("SYNOPSIS", "EXIT STATUS"):
                assert f".Sh {section}" in text, (page, section)


def test_systemd_unit_verifies():
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed")
    d = tempfile.mkdtemp(prefix="posthorn-unit-")
    try:
        sbindir = os.path.dirname(os.path.abspath(POSTHORND))
        text = open(os.path.join(TOP, "etc", "posthornd.service")).read()
        unit = os.path.join(d, "posthornd.service")
        with open(unit, "w") as f:
            f.write(text.replace("@SBINDIR@", sbindir))
        assert "ExecStartPre=" + sbindir + "/posthornd -n" in open(unit).read()
        assert re.search(r"^ExecReload=.*-HUP", text, re.M)
        assert re.search(r"^Restart=on-failure$", text, re.M)
        # The man pages it names are ours (test_man_pages_lint_clean), not installed here.
        r = subprocess.run([tool, "verify", "--man=no", unit], capture_output=True, text=True,
                           timeout=60)
        # Only complaints about this unit count (the host's own units are not ours).
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "posthornd.service" in l]
        assert r.returncode == 0 or not ours, r.stdout + r.stderr
        assert not ours, ours
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_rc_scripts_parse():
    for os_name, shell in (("freebsd", "sh"), ("openbsd", "ksh")):
        script = os.path.join(TOP, "etc", "rc.d", os_name, "posthornd")
        interp = shutil.which(shell) or shutil.which("sh")
        r = subprocess.run([interp, "-n", script], capture_output=True, text=True)
        assert r.returncode == 0, (script, r.stderr)
        # Both refuse to start a configuration that posthornd -n rejects.
        assert re.search(r"\$\{(daemon|procname)\} -n", open(script).read()), script
