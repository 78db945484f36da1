//! `lru_crawler metadump` over a real socket: the line format memcached
//! 1.6 writes (which memcached-tool's `dump` and `keys` parse), its refusals,
//! and a dump far larger than a connection's output limit streaming out
//! whole. Run with `MEMCRAB_TEST_SERVER=memcached` to check the expectations
//! against memcached.

mod common;

use common::{against_memcached, set_many, Conn, Server};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Sends a metadump and reads its item lines (without "\n") up to `END`.
fn metadump(c: &mut Conn, classes: &str) -> Vec<String> {
    c.send(format!("lru_crawler metadump {classes}\r\n").as_bytes());
    let mut rows = Vec::new();
    loop {
        let l = c.read_line();
        if l == "END\r\n" {
            return rows;
        }
        assert!(l.starts_with("key="), "not an item line: {l:?}");
        rows.push(l.trim_end_matches('\n').to_string());
    }
}

/// The `name=value` fields of one metadump line.
fn fields(row: &str) -> HashMap<&str, &str> {
    row.split(' ').filter_map(|f| f.split_once('=')).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn lists_every_live_item_in_memcacheds_format() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"set plain 5 0 3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(b"set ttl 0 100 2\r\nhi\r\n", b"STORED\r\n");
    // Bytes outside letters, digits and -._~ are URI-encoded, '%' too.
    c.roundtrip(b"set a%2C\xff 0 0 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"set gone 0 0 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"delete gone\r\n", b"DELETED\r\n");
    c.send(b"get plain\r\n");
    c.read_exact("VALUE plain 5 3\r\nabc\r\nEND\r\n".len());
    let t = now();
    let rows = metadump(&mut c, "all");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let by_key: HashMap<&str, HashMap<&str, &str>> = rows
        .iter()
        .map(|r| {
            let f = fields(r);
            (f["key"], f)
        })
        .collect();
    let plain = &by_key["plain"];
    assert_eq!(plain["exp"], "-1");
    assert_eq!(plain["fetch"], "yes");
    let la: u64 = plain["la"].parse().unwrap();
    assert!(la + 5 >= t && la <= t + 1, "la {la} now {t}");
    let ttl = &by_key["ttl"];
    let exp: u64 = ttl["exp"].parse().unwrap();
    assert!(exp + 5 >= t + 100 && exp <= t + 101, "exp {exp} now {t}");
    assert_eq!(ttl["fetch"], "no");
    assert!(by_key.contains_key("a%252C%FF"), "{rows:?}");
    for f in by_key.values() {
        for name in ["cas", "cls", "size"] {
            assert!(f[name].parse::<u64>().is_ok(), "{name} in {f:?}");
        }
    }
    // One class alone lists exactly the items stats says it holds.
    let cls = plain["cls"];
    let items = c.stats("items");
    let want: usize = items[&format!("items:{cls}:number")].parse().unwrap();
    let rows = metadump(&mut c, &format!("{cls},{cls}"));
    assert_eq!(rows.len(), want, "{rows:?}");
    assert!(rows.iter().all(|r| fields(r)["cls"] == cls));
    assert_eq!(metadump(&mut c, "hash").len(), 3);
    // The connection goes on as usual.
    c.roundtrip(b"get ttl\r\n", b"VALUE ttl 0 2\r\nhi\r\nEND\r\n");
}

#[test]
fn refusals_match_memcached() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"lru_crawler metadump\r\n", b"ERROR\r\n");
    for bad in ["0", "foo", "1,foo", "-1", "999"] {
        c.roundtrip(
            format!("lru_crawler metadump {bad}\r\n").as_bytes(),
            b"BADCLASS invalid class id\r\n",
        );
    }
    // A valid class with no items.
    c.roundtrip(b"lru_crawler metadump 63\r\n", b"END\r\n");
    let s = Server::start(&["-X"]);
    let mut c = s.connect();
    c.roundtrip(
        b"lru_crawler metadump all\r\n",
        b"ERROR metadump not allowed\r\n",
    );
    let s = Server::start(&["-o", "no_lru_crawler"]);
    let mut c = s.connect();
    c.roundtrip(
        b"lru_crawler metadump all\r\n",
        b"CLIENT_ERROR lru crawler disabled\r\n",
    );
}

#[test]
fn a_dump_larger_than_the_output_limit_streams_whole() {
    // ~80 bytes a line: about 6 MB of dump, many times a connection's
    // output limit, read slowly so the server has to wait for the client.
    let n = 80_000;
    let s = Server::start(&["-m", "64"]);
    let mut c = s.connect();
    set_many(&mut c, "streamed-key:", 0..n, 10);
    // A request pipelined after the dump is answered after its END
    // (memcached loses it: its dump takes over the connection).
    let pipelined = !against_memcached();
    c.send(if pipelined {
        b"lru_crawler metadump all\r\nversion\r\n"
    } else {
        b"lru_crawler metadump all\r\n"
    });
    let mut seen = vec![false; n];
    let mut rows = 0;
    loop {
        let l = c.read_line();
        if l == "END\r\n" {
            break;
        }
        if rows % 10_000 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let f = fields(l.trim_end_matches('\n'));
        let i: usize = f["key"]
            .strip_prefix("streamed-key%3A")
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected key {}", f["key"]));
        assert!(!seen[i], "listed twice: {i}");
        seen[i] = true;
        rows += 1;
    }
    assert_eq!(rows, n, "every item listed once");
    if !pipelined {
        c.send(b"version\r\n");
    }
    assert!(c.read_line().starts_with("VERSION "));
}
