"""The foundation: processes, privilege separation, secrets, -n, reload, child death."""
import os
import pwd
import re
import signal
import subprocess
import time

import pytest

from conftest import (FRONT_USER, IS_ROOT, POSTHORND, RELAY_USER, basic_conf, children_of,
                      free_port)

SENTINEL = "pm-sentinel-7f3c9e1d5a2b4c68"
ENV = {"POSTHORN_TEST_PROVIDER_KEY": SENTINEL}
CHILDREN = ("smtpd", "httpd", "relayer", "control")


def status_ids(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def memory_contains(pid, needle):
    """Scan every readable mapping of pid through /proc/PID/mem."""
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if chunk and needle in chunk:
                found = True
                break
    return found


@pytest.mark.skipif(not IS_ROOT, reason="privilege separation needs root")
def test_five_processes_privsep_and_secret_confinement(daemon_factory, workdir):
    d = daemon_factory(env=ENV).start()
    kids = d.children()
    assert sorted(kids) == sorted(CHILDREN), kids
    # Exactly five: the parent and its four children, nothing else under it.
    assert len(children_of(d.proc.pid)) == 4

    front = pwd.getpwnam(FRONT_USER)
    relay = pwd.getpwnam(RELAY_USER)
    chroot = os.path.join(workdir, "empty")
    for name, pid in kids.items():
        want = relay if name == "relayer" else front
        assert status_ids(pid, "Uid") == [want.pw_uid] * 4, name
        assert status_ids(pid, "Gid") == [want.pw_gid] * 4, name
        with open(f"/proc/{pid}/status") as f:
            groups = [l for l in f if l.startswith("Groups:")][0].split()[1:]
        assert groups == [str(want.pw_gid)], (name, groups)
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
        assert environ == b"", (name, environ)
        assert SENTINEL.encode() not in environ
    for name in ("smtpd", "httpd", "control"):
        assert os.readlink(f"/proc/{kids[name]}/root") == chroot, name
        assert not memory_contains(kids[name], SENTINEL.encode()), name
    assert os.readlink(f"/proc/{kids['relayer']}/root") == "/"
    assert os.readlink(f"/proc/{kids['relayer']}/cwd") == os.path.join(workdir, "spool")
    # The scan can see a secret where one is: the relayer holds the key.
    assert memory_contains(kids["relayer"], SENTINEL.encode())
    # The parent itself keeps its environment; the relayer is not dumpable.
    st = os.stat(os.path.join(workdir, "spool"))
    assert (st.st_uid, st.st_mode & 0o777) == (relay.pw_uid, 0o700)
    sock = os.stat(os.path.join(workdir, "posthorn.sock"))
    assert (sock.st_uid, sock.st_gid, sock.st_mode & 0o777) == (0, front.pw_gid, 0o660)

    d.stop()
    assert d.proc.returncode == 0
    assert SENTINEL.encode() not in d.log_bytes()
    assert not os.path.exists(os.path.join(workdir, "posthorn.sock"))


def test_log_lines_are_json_tagged_with_process(daemon_factory):
    d = daemon_factory(env=ENV, log_level="debug").start()
    d.wait_log("smtpd_configured")
    d.wait_log("relayer_configured")
    d.stop()
    procs = set()
    for line in d.logs():
        assert line["msg"] != "<unparsed>", line
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["time"])
        assert line["level"] in ("debug", "info", "warn", "error")
        procs.add(line["proc"])
    assert {"parent", "smtpd", "httpd", "relayer", "control"} <= procs
    assert SENTINEL.encode() not in d.log_bytes()


def run_check(path, env=None):
    e = {"PATH": "/usr/bin:/bin"}
    e.update(env or {})
    return subprocess.run([POSTHORND, "-n", "-f", path], capture_output=True, text=True, env=e)


def test_check_mode_good_config(workdir):
    path = os.path.join(workdir, "good.conf")
    with open(path, "w") as f:
        f.write(basic_conf(workdir, 2525, 8080, user_lines=IS_ROOT))
    os.chmod(path, 0o600)
    if IS_ROOT:
        from conftest import ensure_users
        ensure_users()
    r = run_check(path, ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
    assert SENTINEL not in r.stdout + r.stderr


BAD_CONFIGS = [
    # (name, mutate(conf) -> conf, expected line number or None, key, message fragment)
    ("unknown key", lambda c: c.replace("log_level = info", "log_level = info\nfrobnicate = 1"),
     9, "frobnicate", "unknown key"),
    ("unknown section", lambda c: c + "\n[mailbox x]\nfoo = bar\n", None, "", "unknown section"),
    ("bad duration", lambda c: c.replace("tls = none", "tls = none\nidle_timeout = soon"),
     None, "idle_timeout", ""),
    ("bad size", lambda c: c.replace("tls = none", "tls = none\nmax_message_size = 1XB"),
     None, "max_message_size", ""),
    ("bad enum", lambda c: c.replace("log_format = json", "log_format = yaml"), 7, "log_format", ""),
    ("missing env", lambda c: c.replace("base_url", "message_stream = ${env.POSTHORN_NOPE_A}\nbase_url")
     .replace("hostname = test.posthorn.invalid", "hostname = ${env.POSTHORN_NOPE_B}"),
     None, "", "POSTHORN_NOPE_A"),
    ("overlong line", lambda c: c.replace("[http]", "; " + "x" * 250 + "\n[http]"), None, "", "too long"),
    ("missing transport", lambda c: c.replace("transport = postmark\n\n[endpoint", "transport = nowhere\n\n[endpoint"),
     None, "transport", "nowhere"),
    ("api-mode honeypot", lambda c: c.replace("auth = form", "auth = api-key\napi_keys = k-1234567890abcdef\nhoneypot = _gotcha"),
     None, "honeypot", ""),
]


@pytest.mark.parametrize("name,mutate,line,key,fragment", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_check_mode_bad_configs(workdir, name, mutate, line, key, fragment):
    path = os.path.join(workdir, "bad.conf")
    with open(path, "w") as f:
        f.write(mutate(basic_conf(workdir, 2525, 8080, user_lines=False)))
    os.chmod(path, 0o600)
    r = run_check(path, ENV)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "configuration OK" not in r.stdout
    assert path in r.stderr
    if line is not None:
        assert f"{path}:{line}:" in r.stderr, r.stderr
    else:
        assert re.search(re.escape(path) + r":\d+:", r.stderr), r.stderr
    if key:
        assert f" {key}:" in r.stderr, r.stderr
    assert fragment in r.stderr, r.stderr
    assert SENTINEL not in r.stderr + r.stdout


def test_missing_env_names_listed_together(workdir):
    path = os.path.join(workdir, "env.conf")
    conf = basic_conf(workdir, 2525, 8080, user_lines=False)
    conf = conf.replace("${env.POSTHORN_TEST_PROVIDER_KEY}", "${env.POSTHORN_NOPE_A}")
    conf = conf.replace("hostname = test.posthorn.invalid", "hostname = ${env.POSTHORN_NOPE_B}")
    with open(path, "w") as f:
        f.write(conf)
    r = run_check(path, {})
    assert r.returncode == 1
    err_lines = [l for l in r.stderr.splitlines() if "POSTHORN_NOPE_A" in l]
    assert err_lines and "POSTHORN_NOPE_B" in err_lines[0], r.stderr


def test_literal_secret_needs_private_file(workdir):
    path = os.path.join(workdir, "secret.conf")
    conf = basic_conf(workdir, 2525, 8080, user_lines=False)
    conf = conf.replace("${env.POSTHORN_TEST_PROVIDER_KEY}", SENTINEL)
    with open(path, "w") as f:
        f.write(conf)
    os.chmod(path, 0o644)
    r = run_check(path)
    assert r.returncode == 1
    assert "api_key" in r.stderr and "readable" in r.stderr
    assert SENTINEL not in r.stderr + r.stdout
    os.chmod(path, 0o600)
    r = run_check(path)
    if not IS_ROOT:
        assert r.returncode == 0, r.stderr


def test_sighup_applies_valid_and_keeps_old_on_broken(daemon_factory, workdir):
    d = daemon_factory(env=ENV)
    conf = open(d.conf).read() if os.path.exists(d.conf) else None
    d.start()
    kids = d.children()
    d.write_conf(conf.replace("log_level = info", "log_level = debug"))
    d.signal(signal.SIGHUP)
    d.wait_log("config_reloaded", generation=2)
    # Broken: unknown key. The daemon logs the error and stays on generation 2.
    d.write_conf(conf + "\nbogus_key = 1\n")
    d.signal(signal.SIGHUP)
    failed = d.wait_log("config_reload_failed")
    assert failed["generation"] == 2
    assert any(l.get("msg") == "config_error" and "bogus_key" in l.get("error", "") for l in d.logs())
    time.sleep(0.3)
    assert d.proc.poll() is None
    assert d.children() == kids  # same processes, nothing restarted
    # And it still reloads afterwards.
    d.write_conf(conf)
    d.signal(signal.SIGHUP)
    d.wait_log("config_reloaded", generation=3)
    d.stop()
    assert d.proc.returncode == 0
    assert SENTINEL.encode() not in d.log_bytes()


@pytest.mark.parametrize("victim", CHILDREN)
def test_child_killed_takes_daemon_down(daemon_factory, victim):
    d = daemon_factory(env=ENV).start()
    kids = d.children()
    os.kill(kids[victim], signal.SIGKILL)
    rc = d.wait(timeout=30)
    assert rc != 0
    line = d.wait_log("child_exited", child=victim)
    assert "signal 9" in line["status"]
    # Everything else is gone too.
    time.sleep(0.2)
    for name, pid in kids.items():
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_sigterm_graceful_exit(daemon_factory, workdir):
    d = daemon_factory(env=ENV).start()
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=30) == 0
    d.wait_log("posthornd_stopped")
    assert not any(l.get("msg") == "child_exited" for l in d.logs())


@pytest.mark.skipif(not IS_ROOT, reason="needs root to switch to an unprivileged user")
def test_unprivileged_mode(daemon_factory, workdir):
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(workdir, nobody, nobody)
    d = daemon_factory(env=ENV, run_as=nobody,
                       conf_text=basic_conf(workdir, free_port(), free_port(), user_lines=False))
    d.start()
    d.wait_log("unprivileged_mode")
    kids = d.children()
    assert sorted(kids) == sorted(CHILDREN)
    for name, pid in kids.items():
        assert status_ids(pid, "Uid") == [nobody] * 4, name
        assert os.readlink(f"/proc/{pid}/root") == "/", name
    d.stop()
    assert d.proc.returncode == 0
