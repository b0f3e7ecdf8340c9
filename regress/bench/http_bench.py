#!/usr/bin/python3
"""HTTP ingress throughput: wrk POSTs a 2 KB JSON body with a Bearer key to
an API endpoint of a running posthornd.

  http_bench.py [--mode dry_run|queue|sync|provider] [--runs R] [--duration S]
                [--connections C] [--threads T]

dry_run:  the endpoint prepares the message and answers (no relayer work);
queue:    202 once the relayer has committed the message to the spool
          (delivery to a fake Postmark continues in the background);
sync:     200 after the fake Postmark on loopback accepted the message;
provider: wrk against the fake Postmark alone (the ceiling for sync).
Prints each run (requests/s, p50, p99) and the medians. Needs wrk(1)."""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fakes import FakeProvider  # noqa: E402

POSTHORND = os.environ.get("POSTHORND", os.path.join(HERE, "..", "..", "build", "posthornd"))
KEY = "bench-api-key-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body_2k():
    doc = {"subject_line": "Order 12345 confirmed", "message": "", "customer": "Ada Lovelace",
           "email": "ada@example.org", "order_id": 12345, "paid": True}
    doc["message"] = "x" * (2048 - len(json.dumps(doc)))
    text = json.dumps(doc)
    assert len(text) == 2048
    return text


def conf(d, port, mode, provider_url):
    root = os.geteuid() == 0
    users = "user = _posthorn\nrelay_user = _posthorn_relay\n" if root else ""
    delivery = "queue" if mode == "queue" else "sync"
    return f"""[global]
{users}chroot = {d}/empty
spool = {d}/spool
control_socket = {d}/posthorn.sock
log_level = warn

[http]
listen = 127.0.0.1:{port}

[transport out]
type = postmark
api_key = bench-provider-key
base_url = {provider_url}
max_inflight = 32

[endpoint /api/bench]
auth = api-key
api_keys = {KEY}
to = sink@example.org
from = Bench <bench@example.com>
subject = {{{{.subject_line}}}}
body = {{{{.message}}}}
required = subject_line, message
delivery = {delivery}
dry_run = {"yes" if mode == "dry_run" else "no"}
idempotency_cache_size = 100
"""


def lua_script(d, path):
    script = os.path.join(d, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body_2k())}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {KEY}"\n')
    return script


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, script, a):
    out = subprocess.run(["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.duration}s",
                          "--latency", "-s", script, url], capture_output=True, text=True,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: to_ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat.get("50"), lat.get("99"), int(errors.group(1)) if errors else 0


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("posthornd did not start")


def one_run(a):
    d = tempfile.mkdtemp(prefix="posthorn-httpbench-")
    os.chmod(d, 0o755)
    fake = FakeProvider("postmark")
    fake.server.handle_error = lambda *args: None  # wrk resets connections when it stops
    p = None
    try:
        script = lua_script(d, "/api/bench")
        if a.mode == "provider":
            return run_wrk(fake.url + "/email", script, a)
        port = free_port()
        path = os.path.join(d, "posthorn.conf")
        with open(path, "w") as f:
            f.write(conf(d, port, a.mode, fake.url))
        os.chmod(path, 0o600)
        p = subprocess.Popen([POSTHORND, "-d", "-f", path], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_port(port)
        time.sleep(0.3)
        return run_wrk(f"http://127.0.0.1:{port}/api/bench", script, a)
    finally:
        if p:
            p.terminate()
            p.wait(60)
        fake.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["dry_run", "queue", "sync", "provider"], default="dry_run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk not installed (apt-get install wrk); skipping")
        return
    results = []
    for i in range(a.runs):
        rps, p50, p99, bad = one_run(a)
        results.append((rps, p50, p99))
        print(f"run {i + 1}: {rps:8.1f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
              + (f"  ({bad} non-2xx)" if bad else ""))
    med = [statistics.median(r[i] for r in results) for i in range(3)]
    print(f"http {a.mode}: median {med[0]:.1f} req/s, p50 {med[1]:.2f} ms, p99 {med[2]:.2f} ms "
          f"over {a.runs} runs ({a.connections} connections, 2 KB JSON, Bearer key)")


if __name__ == "__main__":
    main()
