"""pytest fixtures: start a real server (memcrab, or memcached 1.6 when
MEMCRAB_TEST_SERVER=memcached) on a free 127.0.0.1 port, and stop it by PID."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def against_memcached():
    return os.environ.get("MEMCRAB_TEST_SERVER") == "memcached"


def server_binary():
    if against_memcached():
        return "/usr/bin/memcached"
    explicit = os.environ.get("MEMCRAB_BIN")
    if explicit:
        return explicit
    # The most recently built of the release and debug binaries, so a stale
    # release build is not tested by mistake.
    candidates = [ROOT / "target" / p / "memcrab" for p in ("release", "debug")]
    candidates = [c for c in candidates if c.exists()]
    if not candidates:
        raise RuntimeError("memcrab binary not found: run `cargo build` or set MEMCRAB_BIN")
    return str(max(candidates, key=lambda c: c.stat().st_mtime))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listener_pid(port):
    """The pid reported by `stats` of whatever listens on port, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    for line in data.split(b"\r\n"):
        if line.startswith(b"STAT pid "):
            return int(line.split()[2])
    return None


class Server:
    def __init__(self, *args):
        for _attempt in range(5):
            self.port = free_port()
            cmd = [server_binary(), "-p", str(self.port), "-l", "127.0.0.1", "-U", "0", *args]
            if against_memcached():
                cmd += ["-u", "root"]
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pid = listener_pid(self.port)
                if pid == self.proc.pid:
                    return
                if pid is not None or self.proc.poll() is not None:
                    break  # another test's server has the port, or ours died: retry
                time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"server did not start with args {args}")

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def server_pair():
    a, b = Server(), Server()
    yield a, b
    a.stop()
    b.stop()
