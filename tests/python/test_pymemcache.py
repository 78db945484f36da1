"""pymemcache end to end: Client, PooledClient and HashClient with pickle
serde, against a real server process (memcrab, or memcached 1.6 when
MEMCRAB_TEST_SERVER=memcached)."""

import threading

import pytest
from pymemcache import serde
from pymemcache.client.base import Client, PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheServerError

OBJECTS = {
    "int": 42,
    "str": "héllo wörld",
    "bytes": b"\x00\r\nbinary\xff",
    "list": [1, "two", 3.0, None],
    "dict": {"a": 1, "nested": {"b": [1, 2, 3]}},
    "tuple": (1, 2),
    "big": "x" * 500_000,
}


def client_for(server, **kw):
    return Client(server.addr, serde=serde.pickle_serde, connect_timeout=5, timeout=10, **kw)


def exercise(c):
    """The whole text-command API through one pymemcache client object."""
    c.flush_all(noreply=False)
    # set / get with every kind of object.
    for k, v in OBJECTS.items():
        assert c.set(k, v, noreply=False) is True
    for k, v in OBJECTS.items():
        assert c.get(k) == v, k
    assert c.get("missing") is None
    assert c.get("missing", default="dflt") == "dflt"
    # get_many / set_many / delete_many.
    got = c.get_many(list(OBJECTS) + ["missing"])
    assert got == OBJECTS
    assert c.set_many({"m1": 1, "m2": [2]}, noreply=False) == []
    assert c.get_many(["m1", "m2"]) == {"m1": 1, "m2": [2]}
    assert c.delete_many(["m1", "m2"], noreply=False) is True
    assert c.get_many(["m1", "m2"]) == {}
    # delete.
    assert c.delete("int", noreply=False) is True
    assert c.delete("int", noreply=False) is False
    # add / replace.
    assert c.add("fresh", {"v": 1}, noreply=False) is True
    assert c.add("fresh", {"v": 2}, noreply=False) is False
    assert c.replace("fresh", {"v": 3}, noreply=False) is True
    assert c.replace("nope", 1, noreply=False) is False
    assert c.get("fresh") == {"v": 3}
    # append / prepend work on raw bytes.
    assert c.set("raw", b"middle", noreply=False)
    assert c.append("raw", b"-end", noreply=False) is True
    assert c.prepend("raw", b"start-", noreply=False) is True
    assert c.get("raw") == b"start-middle-end"
    assert c.append("nope", b"x", noreply=False) is False
    # incr / decr: pickle_serde stores ints as decimal text.
    assert c.set("n", 10, noreply=False)
    assert c.incr("n", 5, noreply=False) == 15
    assert c.decr("n", 20, noreply=False) == 0
    assert c.incr("n", 2**64 - 1, noreply=False) == 2**64 - 1
    assert c.incr("n", 1, noreply=False) == 0
    assert c.incr("nope", 1, noreply=False) is None
    assert c.decr("nope", 1, noreply=False) is None
    assert int(c.get("n")) == 0
    # gets / cas.
    val, token = c.gets("fresh")
    assert val == {"v": 3} and token
    assert c.cas("fresh", {"v": 4}, token, noreply=False) is True
    assert c.cas("fresh", {"v": 5}, token, noreply=False) is False
    assert c.cas("nope", 1, b"12345", noreply=False) is None
    assert c.get("fresh") == {"v": 4}
    assert c.gets("nope") == (None, None)
    many = c.gets_many(["fresh", "str", "nope"])
    assert set(many) == {"fresh", "str"}
    assert many["fresh"][0] == {"v": 4}
    # touch / gat.
    assert c.touch("fresh", 100, noreply=False) is True
    assert c.touch("nope", 100, noreply=False) is False
    # noreply (pymemcache's default for storage) still stores.
    c.set("quiet", "q")
    c.delete("fresh")
    assert c.get("quiet") == "q"
    assert c.get("fresh") is None
    # expiry.
    c.set("gone", 1, expire=-1, noreply=False)
    assert c.get("gone") is None
    # stats (HashClient has no stats(); test_hash_client_two_servers reads each server).
    if not isinstance(c, HashClient):
        stats = c.stats()
        for k in (b"pid", b"curr_items", b"get_hits", b"cmd_set", b"evictions", b"version"):
            assert k in stats, k
        assert stats[b"get_hits"] > 0
        version = stats[b"version"]
        assert (version.decode() if isinstance(version, bytes) else str(version)).startswith("1.6")
        settings = c.stats("settings")
        assert b"maxbytes" in settings
        assert c.version().startswith(b"1.6")
    # Errors surface as exceptions and the client keeps working.
    with pytest.raises(MemcacheServerError):
        c.set("huge", b"x" * (2 * 1024 * 1024), noreply=False)
    assert c.get("str") == OBJECTS["str"]
    # flush_all.
    c.flush_all(noreply=False)
    assert c.get_many(list(OBJECTS)) == {}


def test_client(server):
    c = client_for(server)
    exercise(c)
    # pymemcache has no gat(); raw_command sends the line as is.
    c.set("g", b"val", noreply=False)
    reply = c.raw_command(b"gat 100 g", b"END\r\n")
    assert reply == b"VALUE g 0 3\r\nval\r\n", reply  # raw_command strips END
    assert c.cache_memlimit(100) is True
    assert int(c.stats()[b"limit_maxbytes"]) == 100 * 1024 * 1024
    c.close()


def test_client_default_noreply_pipeline(server):
    c = client_for(server)
    for i in range(2000):
        c.set(f"k{i}", {"i": i})  # noreply: replies are not awaited
    got = c.get_many([f"k{i}" for i in range(2000)])
    assert got == {f"k{i}": {"i": i} for i in range(2000)}
    c.close()


def test_pooled_client(server):
    pool = PooledClient(server.addr, serde=serde.pickle_serde, max_pool_size=8, connect_timeout=5, timeout=10)
    exercise(pool)
    errors = []

    def work(t):
        try:
            for i in range(300):
                key = f"t{t}-{i % 30}"
                pool.set(key, {"t": t, "i": i}, noreply=False)
                assert pool.get(key) == {"t": t, "i": i}
                pool.incr("shared", 1, noreply=False)
        except Exception as e:  # reported below with its thread
            errors.append((t, repr(e)))

    pool.set("shared", 0, noreply=False)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert int(pool.get("shared")) == 8 * 300
    pool.close()


def test_hash_client_two_servers(server_pair):
    a, b = server_pair
    hc = HashClient([a.addr, b.addr], serde=serde.pickle_serde, connect_timeout=5, timeout=10, use_pooling=True)
    exercise(hc)
    data = {f"key-{i}": {"i": i, "s": "v" * (i % 50)} for i in range(500)}
    assert hc.set_many(data, noreply=False) == []
    assert hc.get_many(list(data)) == data
    # Keys really are spread over both servers: ask each server for every
    # key (not `curr_items`, which after exercise()'s flush_all still counts
    # flushed items until they are reclaimed, lazily, as in memcached).
    counts = []
    for s in (a, b):
        c = client_for(s)
        counts.append(len(c.get_many(list(data))))
        c.close()
    assert sum(counts) == 500
    assert min(counts) > 50, counts
    for k in list(data)[:50]:
        assert hc.delete(k, noreply=False) is True
    assert hc.get_many(list(data)[:50]) == {}
    assert hc.incr("ctr", 1, noreply=False) is None
    hc.set("ctr", 5, noreply=False)
    assert hc.incr("ctr", 1, noreply=False) == 6
    hc.close()
