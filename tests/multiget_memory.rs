//! Multi-gets whose replies are much larger than a connection's output
//! limit: the server streams them (memcached does too) instead of rendering
//! the whole reply at once, so memory stays bounded, while the bytes on the
//! wire, their order and the counters stay exactly as memcached's. Every
//! test here also passes with `MEMCRAB_TEST_SERVER=memcached`.
mod common;

use common::{value_for, Conn, Server};
use std::collections::HashMap;
use std::time::Duration;

fn set(c: &mut Conn, key: &str, value: &[u8]) {
    let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
}

fn value_reply(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = format!("VALUE {key} 0 {}\r\n", value.len()).into_bytes();
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n");
    r
}

fn counters(c: &mut Conn, names: &[&str]) -> Vec<u64> {
    let s: HashMap<String, String> = c.stats("");
    names
        .iter()
        .map(|n| s[*n].parse().expect("numeric stat"))
        .collect()
}

fn delta(after: &[u64], before: &[u64]) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

/// 200 keys of 1 MB values in one `get` line, read slowly: every value
/// arrives intact and in order while the server's RSS stays far below the
/// 200 MB the whole reply would take.
#[test]
fn one_get_of_200_large_values_streams_in_bounded_memory() {
    const DISTINCT: usize = 20;
    const KEYS: usize = 200;
    const LEN: usize = 1 << 20;
    let s = Server::start(&["-m", "128", "-I", "2m", "-t", "2"]);
    let mut c = s.connect();
    let names: Vec<String> = (0..DISTINCT).map(|i| format!("big{i}")).collect();
    let values: Vec<Vec<u8>> = names.iter().map(|k| value_for(k, LEN)).collect();
    for (k, v) in names.iter().zip(&values) {
        set(&mut c, k, v);
    }
    // Warm the buffers a single 1 MB reply needs before the baseline.
    let mut one = value_reply(&names[0], &values[0]);
    one.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get big0\r\n", &one);
    std::thread::sleep(Duration::from_millis(200));
    let base = s.rss_kib();

    // A fixed permutation with repeats: key i of the line is big{(7i+3)%20}.
    let order: Vec<usize> = (0..KEYS).map(|i| (7 * i + 3) % DISTINCT).collect();
    let mut line = b"get".to_vec();
    for &k in &order {
        line.push(b' ');
        line.extend_from_slice(names[k].as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    c.send(&line);

    let mut peak = base;
    for (i, &k) in order.iter().enumerate() {
        let head = c.read_line();
        assert_eq!(
            head,
            format!("VALUE {} 0 {LEN}\r\n", names[k]),
            "value #{i} header"
        );
        let body = c.read_exact(LEN + 2);
        assert!(
            body[..LEN] == values[k][..] && &body[LEN..] == b"\r\n",
            "value #{i} ({}) corrupted",
            names[k]
        );
        if i % 10 == 0 {
            // A slow reader: the server must wait for us, not buffer ahead.
            std::thread::sleep(Duration::from_millis(50));
            peak = peak.max(s.rss_kib());
        }
    }
    assert_eq!(c.read_line(), "END\r\n");
    peak = peak.max(s.rss_kib());
    eprintln!("multi-get of {KEYS} x 1 MB: RSS {base} KiB before, peak {peak} KiB while streaming");
    assert!(
        peak < base + 64 * 1024,
        "RSS grew from {base} KiB to {peak} KiB during one multi-get"
    );
    // The connection is still in step.
    c.roundtrip(b"get nothing\r\n", b"END\r\n");
}

/// Large multi-gets pipelined with sets, deletes and small gets in one
/// write: each reply reflects exactly the commands before it.
#[test]
fn pipelined_multigets_and_sets_keep_order() {
    const LEN: usize = 300 * 1024; // over the server's 256 KB output limit
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "1"]);
    let mut c = s.connect();
    let a1 = value_for("a1", LEN);
    let a2 = value_for("a2", LEN);
    let b1 = value_for("b1", LEN);
    let b2 = value_for("b2", LEN);
    let mut req = Vec::new();
    let mut want = Vec::new();
    let set_req = |req: &mut Vec<u8>, key: &str, v: &[u8]| {
        req.extend_from_slice(format!("set {key} 0 0 {}\r\n", v.len()).as_bytes());
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    };
    set_req(&mut req, "a", &a1);
    want.extend_from_slice(b"STORED\r\n");
    set_req(&mut req, "b", &b1);
    want.extend_from_slice(b"STORED\r\n");
    req.extend_from_slice(b"get a b a b a\r\n");
    for (k, v) in [("a", &a1), ("b", &b1), ("a", &a1), ("b", &b1), ("a", &a1)] {
        want.extend(value_reply(k, v));
    }
    want.extend_from_slice(b"END\r\n");
    set_req(&mut req, "a", &a2);
    want.extend_from_slice(b"STORED\r\n");
    req.extend_from_slice(b"get b a b\r\nversion\r\n");
    for (k, v) in [("b", &b1), ("a", &a2), ("b", &b1)] {
        want.extend(value_reply(k, v));
    }
    want.extend_from_slice(b"END\r\n");
    c.send(b"version\r\n");
    want.extend_from_slice(c.read_line().as_bytes());
    set_req(&mut req, "b", &b2);
    want.extend_from_slice(b"STORED\r\n");
    req.extend_from_slice(b"delete a\r\nget a b a b\r\nget a\r\n");
    want.extend_from_slice(b"DELETED\r\n");
    want.extend(value_reply("b", &b2));
    want.extend(value_reply("b", &b2));
    want.extend_from_slice(b"END\r\nEND\r\n");
    c.send(&req);
    let got = c.read_exact(want.len());
    if got != want {
        let at = got.iter().zip(&want).position(|(x, y)| x != y).unwrap_or(0);
        panic!(
            "replies differ at byte {at}: got {:?}, want {:?}",
            String::from_utf8_lossy(&got[at..(at + 60).min(got.len())]),
            String::from_utf8_lossy(&want[at..(at + 60).min(want.len())])
        );
    }
    c.roundtrip(b"get nothing\r\n", b"END\r\n");
}

/// Misses between large hits: only hits are answered, in order, and each
/// key is counted once although the reply is written across several turns.
#[test]
fn streamed_multiget_with_misses_counts_each_key_once() {
    const LEN: usize = 300 * 1024;
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "1"]);
    let mut c = s.connect();
    let h: Vec<Vec<u8>> = (0..3).map(|i| value_for(&format!("h{i}"), LEN)).collect();
    for (i, v) in h.iter().enumerate() {
        set(&mut c, &format!("h{i}"), v);
    }
    let names = ["cmd_get", "get_hits", "get_misses", "cmd_touch"];
    let before = counters(&mut c, &names);
    let mut want = Vec::new();
    for (k, v) in [("h0", &h[0]), ("h1", &h[1]), ("h0", &h[0]), ("h2", &h[2])] {
        want.extend(value_reply(k, v));
    }
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get m0 h0 m1 m2 h1 h0 m3 h2 m4\r\n", &want);
    let after = counters(&mut c, &names);
    assert_eq!(delta(&after, &before), [9, 4, 5, 0]);
    // Only misses: nothing to stream.
    c.roundtrip(b"get m0 m1 m2\r\n", b"END\r\n");
}

/// `gat`/`gats` across stops: each key touched and counted once (touch
/// counters, not get counters, as memcached 1.6 counts), `gats` CAS values
/// match `gets`, and the new TTL is in place.
#[test]
fn streamed_gat_touches_and_counts_each_key_once() {
    const LEN: usize = 300 * 1024;
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "1"]);
    let mut c = s.connect();
    let h: Vec<Vec<u8>> = (0..3).map(|i| value_for(&format!("t{i}"), LEN)).collect();
    for (i, v) in h.iter().enumerate() {
        set(&mut c, &format!("t{i}"), v);
    }
    let names = [
        "cmd_get",
        "get_hits",
        "get_misses",
        "cmd_touch",
        "touch_hits",
        "touch_misses",
    ];
    let before = counters(&mut c, &names);
    let mut want = Vec::new();
    for (k, v) in [("t0", &h[0]), ("t1", &h[1]), ("t2", &h[2]), ("t0", &h[0])] {
        want.extend(value_reply(k, v));
    }
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"gat 1000 t0 t1 nope t2 t0\r\n", &want);
    let after = counters(&mut c, &names);
    assert_eq!(delta(&after, &before), [0, 0, 0, 5, 4, 1]);
    for k in ["t0", "t1", "t2"] {
        c.send(format!("mg {k} t\r\n").as_bytes());
        let line = c.read_line();
        let ttl: i64 = line
            .trim_end()
            .strip_prefix("HD t")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("bad mg reply {line:?}"));
        assert!((990..=1000).contains(&ttl), "{k} ttl {ttl}");
    }

    // gats returns the same CAS as gets for every key, streamed or not.
    c.send(b"gets t0 t1 t2\r\n");
    let mut cas = Vec::new();
    for (i, v) in h.iter().enumerate() {
        let head = c.read_line();
        let parts: Vec<&str> = head.split_whitespace().collect();
        assert_eq!(parts[1], format!("t{i}"));
        cas.push(parts[4].to_string());
        assert!(c.read_exact(LEN + 2)[..LEN] == v[..]);
    }
    assert_eq!(c.read_line(), "END\r\n");
    let mut want = Vec::new();
    for i in [2usize, 1, 0] {
        want.extend(format!("VALUE t{i} 0 {LEN} {}\r\n", cas[i]).bytes());
        want.extend_from_slice(&h[i]);
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"gats 0 t2 t1 t0\r\n", &want);
}

/// A key over 250 bytes late in a line whose earlier values already pass
/// the output limit: one error and no values, like memcached, and the keys
/// before it are still counted.
#[test]
fn long_key_late_in_a_streamed_line_is_one_error() {
    const LEN: usize = 300 * 1024;
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "1"]);
    let mut c = s.connect();
    let v = value_for("x", LEN);
    set(&mut c, "x", &v);
    let names = ["cmd_get", "get_hits", "get_misses"];
    let before = counters(&mut c, &names);
    let long = "k".repeat(251);
    c.roundtrip(
        format!("get x x nope x {long} x\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    let after = counters(&mut c, &names);
    assert_eq!(delta(&after, &before), [4, 3, 1]);
    let mut want = value_reply("x", &v);
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get x\r\n", &want);
}
