"""memcached-tool (the perl script Debian's memcached package ships) against
a real server: `dump` and `keys` list items through `lru_crawler metadump`,
`display` and `stats` read the stats groups."""

import os
import socket
import subprocess

import pytest
from pymemcache.client.base import Client

TOOL = "/usr/share/memcached/scripts/memcached-tool"

pytestmark = pytest.mark.skipif(
    not os.path.exists(TOOL), reason="memcached-tool not installed (apt-get install memcached)"
)


def tool(server, *args):
    out = subprocess.run(
        ["perl", TOOL, f"127.0.0.1:{server.port}", *args],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def test_dump_writes_add_commands_that_restore_every_item(server):
    c = Client(server.addr, connect_timeout=5, timeout=10)
    items = {f"user:{i}": (f"value-{i}" * (i + 1)).encode() for i in range(50)}
    for k, v in items.items():
        assert c.set(k, v, expire=0 if k != "user:7" else 3600, flags=i_flags(k), noreply=False)
    dump = tool(server, "dump")
    # The dump is a stream of `add <key> <flags> <exptime> <len>\r\n<value>\r\n`.
    restored = {}
    rest = dump
    while rest:
        line, rest = rest.split(b"\r\n", 1)
        _, key, flags, exptime, length = line.split(b" ")
        value, rest = rest[: int(length)], rest[int(length) + 2 :]
        restored[key.decode()] = (int(flags), int(exptime), value)
    assert set(restored) == set(items)
    for k, v in items.items():
        flags, exptime, value = restored[k]
        assert value == v and flags == i_flags(k)
        assert (exptime > 0) == (k == "user:7")
    # Replaying it into an empty server gives the same items.
    c.flush_all(noreply=False)
    with socket.create_connection(server.addr) as s:
        s.sendall(dump)
        s.sendall(b"version\r\n")
        replies = b""
        while b"VERSION" not in replies:
            replies += s.recv(65536)
    assert replies.count(b"STORED\r\n") == len(items)
    assert c.get_many(list(items)) == items


def test_keys_lists_one_line_per_item(server):
    c = Client(server.addr, connect_timeout=5, timeout=10)
    for i in range(30):
        c.set(f"k{i}", b"v", noreply=False)
    lines = tool(server, "keys").decode().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(f"key=k{i}" for i in range(30))


def test_display_and_stats(server):
    c = Client(server.addr, connect_timeout=5, timeout=10)
    c.set("a", b"x" * 100, noreply=False)
    display = tool(server, "display").decode()
    assert "Item_Size" in display and len(display.splitlines()) >= 2
    stats = tool(server, "stats").decode()
    assert "curr_items" in stats and "get_hits" in stats


def i_flags(key):
    return int(key.split(":")[1]) * 3
