#!/usr/bin/python3
"""SMTP ingress benchmark (issue 4): smtp-source sends M messages of 2 KB over
S concurrent sessions to a queue-mode listener (every message fsynced before
250) whose transport is smtp-sink. Reports accepted msg/s (smtp-source wall
time), delivered msg/s (until the spool is empty) and the peak RSS of all
posthornd processes; then the RSS with 5000 idle concurrent sessions.

  smtp_bench.py [--messages 2000] [--sessions 20] [--runs 5] [--idle 5000]"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
POSTHORND = os.environ.get("POSTHORND", os.path.join(HERE, "..", "..", "build", "posthornd"))
ROOT = os.geteuid() == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_kb(pid):
    """RSS of pid and its direct children (the posthornd process tree)."""
    total = 0
    pids = [pid]
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(e))
            except (OSError, ValueError, IndexError):
                pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Peak:
    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, tree_rss_kb(self.pid))
            time.sleep(0.05)

    def done(self):
        self.stop = True
        self.t.join()
        return self.peak


def start(d, sink_port, smtp_port, max_sessions=1000):
    users = "user = _posthorn\nrelay_user = _posthorn_relay\n" if ROOT else ""
    conf = f"""[global]
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log_level = warn

[transport sink]
type = smtp
host = 127.0.0.1
port = {sink_port}
tls = none
max_inflight = 16

[smtp bench]
listen = 127.0.0.1:{smtp_port}
tls = none
auth_required = none
allowed_senders = *
max_recipients_per_session = 10
max_sessions = {max_sessions}
max_sessions_per_ip = {max_sessions}
idle_timeout = 300s
transport = sink
delivery = queue
"""
    path = os.path.join(d, "posthorn.conf")
    with open(path, "w") as f:
        f.write(conf)
    os.chmod(path, 0o600)
    p = subprocess.Popen([POSTHORND, "-d", "-f", path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", smtp_port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("posthornd did not start")


def sink_proc(port):
    return subprocess.Popen(["/usr/sbin/smtp-sink"] + (["-u", "nobody"] if ROOT else []) +
                            ["-c", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_run(messages, sessions):
    d = tempfile.mkdtemp(prefix="posthorn-smtpbench-")
    os.chmod(d, 0o755)
    sink_port, smtp_port = free_port(), free_port()
    sink = sink_proc(sink_port)
    p = start(d, sink_port, smtp_port)
    try:
        peak = Peak(p.pid)
        t0 = time.monotonic()
        subprocess.run(["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(messages),
                        "-l", "2048", "-f", "bench@example.com", "-t", "sink@example.org",
                        f"127.0.0.1:{smtp_port}"], check=True)
        accepted = time.monotonic() - t0
        q = os.path.join(d, "spool", "queue")
        while os.path.isdir(q) and os.listdir(q) and time.monotonic() - t0 < 600:
            time.sleep(0.01)
        delivered = time.monotonic() - t0
        return messages / accepted, messages / delivered, peak.done()
    finally:
        p.terminate()
        p.wait(30)
        sink.kill()
        sink.wait()
        shutil.rmtree(d, ignore_errors=True)


def idle_run(n):
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
    d = tempfile.mkdtemp(prefix="posthorn-smtpidle-")
    os.chmod(d, 0o755)
    sink_port, smtp_port = free_port(), free_port()
    p = start(d, sink_port, smtp_port, max_sessions=n + 100)
    socks = []
    try:
        base = tree_rss_kb(p.pid)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", smtp_port))
            socks.append(s)
        for s in socks:
            s.recv(256)  # the greeting: the session exists
        time.sleep(0.5)
        return base, tree_rss_kb(p.pid)
    finally:
        for s in socks:
            s.close()
        p.terminate()
        p.wait(30)
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle", type=int, default=5000)
    a = ap.parse_args()
    if not os.path.exists("/usr/sbin/smtp-source"):
        print("smtp-source not installed (apt-get install postfix); skipping")
        return
    acc, dlv, mem = [], [], []
    for i in range(a.runs):
        x, y, m = one_run(a.messages, a.sessions)
        acc.append(x), dlv.append(y), mem.append(m)
        print(f"run {i + 1}: accepted {x:7.1f} msg/s, delivered {y:7.1f} msg/s, peak RSS {m / 1024:.1f} MiB")
    print(f"smtp: median accepted {statistics.median(acc):.1f} msg/s, delivered "
          f"{statistics.median(dlv):.1f} msg/s, peak RSS {statistics.median(mem) / 1024:.1f} MiB "
          f"({a.messages} x 2 KB, {a.sessions} sessions, {a.runs} runs)")
    if a.idle:
        base, busy = idle_run(a.idle)
        print(f"smtp: {a.idle} idle sessions: all processes {busy / 1024:.1f} MiB RSS "
              f"(at rest {base / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
