#!/usr/bin/python3
"""Deliveries per second from the spool: N messages are written as spool
entries, posthornd starts, and the clock runs until the queue directory is
empty (every message acknowledged by the provider and unlinked).

  relayer_bench.py [--messages N] [--runs R] [--target postmark|smtp-sink]

postmark: a threaded fake Postmark on loopback (Python; it may be the limit).
smtp-sink: Postfix's smtp-sink (apt-get install postfix), via the smtp transport.
Prints each run and the median."""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fakes import FakeProvider  # noqa: E402

POSTHORND = os.environ.get("POSTHORND", os.path.join(HERE, "..", "..", "build", "posthornd"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_spool(d, n, body_size=2048):
    q = os.path.join(d, "spool", "queue")
    os.makedirs(q)
    os.makedirs(os.path.join(d, "spool", "tmp"))
    body = ("x" * 76 + "\n") * (body_size // 77)
    now = int(time.time())
    for i in range(n):
        mid = uuid.uuid4().hex
        msg = {"version": 1, "id": mid, "envelope_from": "bench@example.com",
               "recipients": ["sink@example.org"], "from": "Bench <bench@example.com>",
               "reply_to": "", "subject": f"bench {i}", "text_body": body, "html_body": "",
               "attachments": [], "headers": [], "source": "smtp:bench", "transport": "out",
               "delivery": "queue", "idempotency_key": "", "created": now}
        entry = {"spool_version": 1, "attempts": 0, "queued_at": now, "next_attempt": 0,
                 "last_error": "", "message": msg}
        with open(os.path.join(q, mid + ".json"), "w") as f:
            json.dump(entry, f)


def conf(d, block, inflight):
    root = os.geteuid() == 0
    users = "user = _posthorn\nrelay_user = _posthorn_relay\n" if root else ""
    return f"""[global]
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log_level = warn

{block}max_inflight = {inflight}

[smtp bench]
listen = 127.0.0.1:{free_port()}
tls = none
auth_required = none
allowed_senders = *
transport = out
"""


def one_run(n, target, inflight):
    d = tempfile.mkdtemp(prefix="posthorn-bench-")
    os.chmod(d, 0o755)
    fake = sink = None
    try:
        if target == "postmark":
            fake = FakeProvider("postmark")
            block = f"[transport out]\ntype = postmark\napi_key = bench-key\nbase_url = {fake.url}\n"
        else:
            port = free_port()
            sink = subprocess.Popen(["/usr/sbin/smtp-sink"] + (["-u", "nobody"] if os.geteuid() == 0 else []) + ["-c", f"127.0.0.1:{port}", "256"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            block = f"[transport out]\ntype = smtp\nhost = 127.0.0.1\nport = {port}\ntls = none\n"
            time.sleep(0.3)
        write_spool(d, n)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "_posthorn_relay:_posthorn_relay", f"{d}/spool"], check=True)
        path = os.path.join(d, "posthorn.conf")
        with open(path, "w") as f:
            f.write(conf(d, block, inflight))
        os.chmod(path, 0o600)
        q = os.path.join(d, "spool", "queue")
        t0 = time.monotonic()
        p = subprocess.Popen([POSTHORND, "-d", "-f", path], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = t0 + 600
        while os.listdir(q) and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        left = len(os.listdir(q))
        p.terminate()
        p.wait(30)
        return (n - left) / elapsed, left
    finally:
        if fake:
            fake.close()
        if sink:
            sink.kill()
            sink.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--target", choices=["postmark", "smtp-sink"], default="postmark")
    ap.add_argument("--inflight", type=int, default=8)
    a = ap.parse_args()
    if a.target == "smtp-sink" and not os.path.exists("/usr/sbin/smtp-sink"):
        print("smtp-sink not installed (apt-get install postfix); skipping")
        return
    rates = []
    for i in range(a.runs):
        rate, left = one_run(a.messages, a.target, a.inflight)
        rates.append(rate)
        print(f"run {i + 1}: {rate:8.1f} deliveries/s ({a.messages} messages, {left} left)")
    print(f"{a.target}: median {statistics.median(rates):.1f} deliveries/s over {a.runs} runs, "
          f"max_inflight {a.inflight}")


if __name__ == "__main__":
    main()
