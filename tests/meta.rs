//! Meta protocol over real sockets: every flag and reply of `mg ms md ma mn
//! me`, quiet pipelines, base64 keys, opaque echo, stale-while-revalidate,
//! win/vivify with two clients, and a stampede-protected cache-aside loop.
//! Every expectation was checked against memcached 1.6.18 with
//! `MEMCRAB_TEST_SERVER=memcached cargo test --test meta`; flags newer than
//! 1.6.18 (`E`, `md x`) are skipped there.
mod common;

use common::{against_memcached, Conn, Server};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Compares one reply line with a pattern: tokens must be equal, except
/// `x*` (flag `x` followed by any number) and `x~N` (flag `x` with a number
/// in N-2..=N, for TTLs that may tick while the test runs).
fn assert_line(got: &str, pattern: &str) {
    let got_t: Vec<&str> = got.trim_end_matches("\r\n").split(' ').collect();
    let pat_t: Vec<&str> = pattern.split(' ').collect();
    let ok = got.ends_with("\r\n")
        && got_t.len() == pat_t.len()
        && got_t.iter().zip(&pat_t).all(|(g, p)| {
            if let Some(prefix) = p.strip_suffix('*') {
                g.starts_with(prefix) && g[prefix.len()..].parse::<i64>().is_ok()
            } else if let Some((prefix, n)) = p.split_once('~') {
                let n: i64 = n.parse().unwrap();
                g.starts_with(prefix)
                    && g[prefix.len()..]
                        .parse::<i64>()
                        .map(|v| (n - 2..=n).contains(&v))
                        .unwrap_or(false)
            } else {
                g == p
            }
        });
    assert!(ok, "got {got:?}, expected pattern {pattern:?}");
}

fn expect(c: &mut Conn, pattern: &str) {
    let l = c.read_line();
    assert_line(&l, pattern);
}

/// The CAS of `key`, read with `mg <key> c`.
fn cas_of(c: &mut Conn, key: &str) -> u64 {
    c.send(format!("mg {key} c\r\n").as_bytes());
    let l = c.read_line();
    l.trim_end()
        .split(' ')
        .find_map(|t| t.strip_prefix('c'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no cas in {l:?}"))
}

fn stats_num(c: &mut Conn) -> HashMap<String, i64> {
    c.stats("")
        .into_iter()
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
        .collect()
}

#[test]
fn mn_and_unknown() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"mn\r\n", b"MN\r\n");
    c.roundtrip(b"mg\r\n", b"ERROR\r\n");
    c.roundtrip(b"ms\r\n", b"ERROR\r\n");
    c.roundtrip(b"md\r\n", b"ERROR\r\n");
    c.roundtrip(b"ma\r\n", b"ERROR\r\n");
    c.roundtrip(b"mn\r\n", b"MN\r\n");
}

#[test]
fn mg_every_return_flag() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms foo 3 T0 F5\r\nbar\r\n", b"HD\r\n");
    let cas = cas_of(&mut c, "foo");
    c.send(b"mg foo v k t f c s h l O123\r\n");
    expect(&mut c, &format!("VA 3 kfoo t-1 f5 c{cas} s3 h1 l~0 O123"));
    assert_eq!(c.read_line(), "bar\r\n");
    // no flags: HD; order follows the request
    c.roundtrip(b"mg foo\r\n", b"HD\r\n");
    c.send(b"mg foo Oxy s f k v\r\n");
    expect(&mut c, "VA 3 Oxy s3 f5 kfoo");
    assert_eq!(c.read_line(), "bar\r\n");
    // h is the state before this access
    c.roundtrip(b"mg foo h\r\n", b"HD h1\r\n");
    // P and L are ignored proxy hints
    c.roundtrip(b"mg foo Pabc Lxyz v\r\n", b"VA 3\r\nbar\r\n");
    // a miss echoes only O and k
    c.roundtrip(b"mg missing v k Oab t c f s\r\n", b"EN kmissing Oab\r\n");
    c.roundtrip(b"mg missing\r\n", b"EN\r\n");
    // runs of spaces are one separator; "\n" alone ends a line
    c.roundtrip(b"mg  foo s   v \r\n", b"VA 3 s3\r\nbar\r\n");
    c.roundtrip(b"mg foo s\n", b"HD s3\r\n");
    // client flags are 32-bit, truncated like memcached
    c.roundtrip(
        b"ms big 1 F4294967295\r\nx\r\nmg big f\r\n",
        b"HD\r\nHD f4294967295\r\n",
    );
    c.roundtrip(
        b"ms big 1 F4294967297\r\nx\r\nmg big f\r\n",
        b"HD\r\nHD f1\r\n",
    );
}

#[test]
fn mg_no_bump_hit_and_last_access() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms ul 1\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"mg ul h u\r\n", b"HD h0\r\n");
    c.roundtrip(b"mg ul h u\r\n", b"HD h0\r\n");
    c.roundtrip(b"mg ul h\r\n", b"HD h0\r\n");
    c.roundtrip(b"mg ul h\r\n", b"HD h1\r\n");
    std::thread::sleep(Duration::from_millis(2100));
    c.send(b"mg ul l u\r\n");
    let l = c.read_line();
    let la: u64 = l.trim_end().strip_prefix("HD l").unwrap().parse().unwrap();
    assert!((1..=3).contains(&la), "{l:?}");
    // u does not change the last-access time (how often a plain hit
    // refreshes it is the LRU's business: memcached only on the second hit)
    c.send(b"mg ul l u\r\n");
    expect(&mut c, &format!("HD l~{la}"));
}

#[test]
fn mg_ttl_touch_and_order() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms tt 1 T100\r\nx\r\n", b"HD\r\n");
    c.send(b"mg tt t\r\n");
    expect(&mut c, "HD t~100");
    // T is applied where it appears: t before T shows the old TTL
    c.send(b"mg tt t T30\r\n");
    expect(&mut c, "HD t~100");
    c.send(b"mg tt T50 t\r\n");
    expect(&mut c, "HD t~50");
    c.roundtrip(b"mg tt T0 t\r\n", b"HD t-1\r\n");
    // a negative TTL expires the item (after the reply)
    c.roundtrip(b"mg tt T-1 v\r\n", b"VA 1\r\nx\r\n");
    c.roundtrip(b"mg tt v\r\n", b"EN\r\n");
    c.roundtrip(b"mg tt T30\r\n", b"EN\r\n");
}

#[test]
fn mg_errors() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let long = "a".repeat(251);
    let ok = "a".repeat(250);
    for (req, rep) in [
        ("mg foo zz", "CLIENT_ERROR invalid flag"),
        ("mg foo !", "CLIENT_ERROR invalid flag"),
        ("mg foo S", "CLIENT_ERROR invalid flag"),
        ("mg foo v v", "CLIENT_ERROR duplicate flag"),
        ("mg foo O1 O2", "CLIENT_ERROR duplicate flag"),
        ("mg foo T", "CLIENT_ERROR bad token in command line format"),
        (
            "mg foo Tabc",
            "CLIENT_ERROR bad token in command line format",
        ),
        ("mg foo N", "CLIENT_ERROR bad token in command line format"),
        ("mg foo R", "CLIENT_ERROR bad token in command line format"),
        ("mg foo b", "CLIENT_ERROR error decoding key"),
        // a bad value is noted and parsing goes on: an invalid flag wins
        ("mg foo T zz", "CLIENT_ERROR invalid flag"),
        (
            "mg foo Oabcdefghijabcdefghijabcdefghijab",
            "CLIENT_ERROR opaque token too long",
        ),
        (
            &format!("mg {long} v"),
            "CLIENT_ERROR bad command line format",
        ),
        (&format!("mg {ok} v"), "EN"),
        (
            "mg foo P P P P P P P P P P P P P P P P P",
            "CLIENT_ERROR duplicate flag",
        ),
        (
            "mg foo P P P P P P P P P P P P P P P P P P",
            "CLIENT_ERROR options flags are too long",
        ),
        (
            "mg foo v k s t c f h l u q O1 Pa La Cb Ix N5 R5 T5 Ma",
            "CLIENT_ERROR options flags are too long",
        ),
    ] {
        c.roundtrip(
            format!("{req}\r\n").as_bytes(),
            format!("{rep}\r\n").as_bytes(),
        );
    }
    // the longest opaque is 31 characters
    c.roundtrip(
        b"mg nokey Oabcdefghijabcdefghijabcdefghija\r\n",
        b"EN Oabcdefghijabcdefghijabcdefghija\r\n",
    );
    // the connection stays usable
    c.roundtrip(b"mn\r\n", b"MN\r\n");
}

#[test]
fn quiet_mode_pipelines() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms a 1\r\n1\r\nms b 1\r\n2\r\n", b"HD\r\nHD\r\n");
    // mg q: misses (EN) vanish, hits stay; mn ends the batch
    c.roundtrip(
        b"mg a v q k\r\nmg nope1 v q k\r\nmg b v q k\r\nmg nope2 q\r\nmg a q\r\nmn\r\n",
        b"VA 1 ka\r\n1\r\nVA 1 kb\r\n2\r\nHD\r\nMN\r\n",
    );
    // ms q: HD vanishes, NS/EX/NF stay
    c.roundtrip(
        b"ms c 1 q\r\n3\r\nms c 1 q ME O1\r\n3\r\nms c 1 q C99999 O2\r\n3\r\nms nope3 1 q C99999 O3\r\n3\r\nmn\r\n",
        b"NS O1\r\nEX O2\r\nNF O3\r\nMN\r\n",
    );
    // md q: HD vanishes, NF and EX stay
    c.roundtrip(
        b"md c q\r\nmd c q O4\r\nmd a q C99999 O5\r\nmd a I q\r\nmn\r\n",
        b"NF O4\r\nEX O5\r\nMN\r\n",
    );
    // ma q: success (HD or VA) vanishes, NF stays
    c.roundtrip(b"ms n 1\r\n5\r\n", b"HD\r\n");
    c.roundtrip(
        b"ma n q\r\nma n q v\r\nma nope4 q O6\r\nma n q C99999 O7\r\nmn\r\n",
        b"NF O6\r\nEX O7\r\nMN\r\n",
    );
    c.roundtrip(b"mg n v\r\n", b"VA 1\r\n7\r\n");
    // errors are always returned
    c.roundtrip(
        b"mg a q zz\r\nmn\r\n",
        b"CLIENT_ERROR invalid flag\r\nMN\r\n",
    );
    // a large quiet batch in one write
    let mut req = Vec::new();
    for i in 0..200 {
        if i % 2 == 0 {
            req.extend_from_slice(format!("ms q{i} 2 q T0\r\n{:02}\r\n", i % 100).as_bytes());
        }
    }
    req.extend_from_slice(b"mn\r\n");
    c.roundtrip(&req, b"MN\r\n");
    let mut req = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        req.extend_from_slice(format!("mg q{i} v q O{i}\r\n").as_bytes());
        if i % 2 == 0 {
            expected.extend_from_slice(format!("VA 2 O{i}\r\n{:02}\r\n", i % 100).as_bytes());
        }
    }
    req.extend_from_slice(b"mn\r\n");
    expected.extend_from_slice(b"MN\r\n");
    c.roundtrip(&req, &expected);
}

#[test]
fn ms_flags_modes_and_cas() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(b"ms k1 3 c k Oxx\r\nbar\r\n");
    let l = c.read_line();
    assert_line(&l, "HD c* kk1 Oxx");
    let cas: u64 = l.split(' ').nth(1).unwrap()[1..].parse().unwrap();
    assert_eq!(cas_of(&mut c, "k1"), cas);
    // flags echoed in request order; failures report c0
    c.roundtrip(b"ms nx 1 MR c k O9\r\nx\r\n", b"NS c0 knx O9\r\n");
    c.roundtrip(b"ms nx 1 C5 c k O9\r\nx\r\n", b"NF c0 knx O9\r\n");
    c.roundtrip(b"ms k1 1 C99999 O9 k c\r\nx\r\n", b"EX O9 kk1 c0\r\n");
    // C with the right CAS stores
    c.send(format!("ms k1 3 C{cas} c\r\nbaz\r\n").as_bytes());
    let l = c.read_line();
    assert_line(&l, "HD c*");
    assert_ne!(l.trim_end(), format!("HD c{cas}"));
    c.roundtrip(b"mg k1 v\r\n", b"VA 3\r\nbaz\r\n");
    // modes: E add, A append, P prepend, R replace, S set
    c.roundtrip(b"ms k1 1 ME\r\nx\r\n", b"NS\r\n");
    c.roundtrip(b"ms k2 1 ME\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"ms k2 2 MA\r\nyz\r\n", b"HD\r\n");
    c.roundtrip(b"ms k2 2 MP\r\nvw\r\n", b"HD\r\n");
    c.roundtrip(b"mg k2 v\r\n", b"VA 5\r\nvwxyz\r\n");
    c.roundtrip(b"ms k3 1 MA\r\nx\r\n", b"NS\r\n");
    c.roundtrip(b"ms k3 1 MP\r\nx\r\n", b"NS\r\n");
    c.roundtrip(b"ms k3 1 MR\r\nx\r\n", b"NS\r\n");
    c.roundtrip(b"ms k2 1 MR F9 T0\r\nr\r\n", b"HD\r\n");
    c.roundtrip(b"mg k2 v f\r\n", b"VA 1 f9\r\nr\r\n");
    c.roundtrip(b"ms k2 1 MS\r\ns\r\n", b"HD\r\n");
    c.roundtrip(b"mg k2 v f\r\n", b"VA 1 f0\r\ns\r\n");
    // append keeps the flags; with a wrong CAS it is refused
    c.roundtrip(b"ms k4 1 F7\r\na\r\nms k4 1 MA\r\nb\r\n", b"HD\r\nHD\r\n");
    c.roundtrip(b"mg k4 v f\r\n", b"VA 2 f7\r\nab\r\n");
    c.roundtrip(b"ms k4 1 MA C99999\r\nc\r\n", b"EX\r\n");
    // T sets the TTL
    c.roundtrip(b"ms k5 1 T100\r\nx\r\n", b"HD\r\n");
    c.send(b"mg k5 t\r\n");
    expect(&mut c, "HD t~100");
    c.roundtrip(b"ms k5 1 T-1\r\nx\r\nmg k5\r\n", b"HD\r\nEN\r\n");
    // an empty value
    c.roundtrip(b"ms k6 0\r\n\r\nmg k6 v s\r\n", b"HD\r\nVA 0 s0\r\n\r\n");
    // binary-safe values
    c.roundtrip(
        b"ms k7 4\r\n\r\n\0\n\r\nmg k7 v\r\n",
        b"HD\r\nVA 4\r\n\r\n\0\n\r\n",
    );
}

#[test]
fn ms_errors_and_swallowing() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let long = "a".repeat(251);
    // line errors before the length: the data line is then a bad command
    c.roundtrip(
        format!("ms {long} 3\r\nbar\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(b"ms k1\r\n", b"CLIENT_ERROR bad command line format\r\n");
    c.roundtrip(
        b"ms k1 abc\r\nbar\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"ms k1 -1\r\nbar\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"ms k 1 P L c f h k l q s t u v C5 F1 T1 MS I D1\r\nx\r\n",
        b"CLIENT_ERROR options flags too long\r\nERROR\r\n",
    );
    // flag errors after the length: the data block is swallowed
    for (flags, rep) in [
        ("zz", "CLIENT_ERROR invalid flag"),
        ("S100", "CLIENT_ERROR invalid flag"),
        ("c c", "CLIENT_ERROR duplicate flag"),
        ("b", "CLIENT_ERROR error decoding key"),
        ("T", "CLIENT_ERROR bad token in command line format"),
        ("C", "CLIENT_ERROR bad token in command line format"),
        ("Cabc", "CLIENT_ERROR bad token in command line format"),
        ("F-1", "CLIENT_ERROR bad command line format"),
        ("MZ", "CLIENT_ERROR invalid mode for ms M token"),
        ("Ms", "CLIENT_ERROR invalid mode for ms M token"),
        ("M", "CLIENT_ERROR incorrect length for M token"),
        ("MEE", "CLIENT_ERROR incorrect length for M token"),
        (
            "O123456789012345678901234567890123",
            "CLIENT_ERROR opaque token too long",
        ),
    ] {
        c.roundtrip(
            format!("ms k2 3 {flags}\r\nbar\r\nmn\r\n").as_bytes(),
            format!("{rep}\r\nMN\r\n").as_bytes(),
        );
    }
    c.roundtrip(b"mg k2\r\n", b"EN\r\n");
    // bad data chunk: exactly <len>+2 bytes are read, the rest is a new line
    c.roundtrip(
        b"ms k3 3\r\nbarx\r\n",
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    c.roundtrip(b"mg k3\r\n", b"EN\r\n");
    // too large: reply, swallow the block (also when it arrives in pieces)
    c.roundtrip(b"ms big 1 T0\r\nx\r\n", b"HD\r\n");
    let mut req = b"ms big 2000000 T0\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'a', 2_000_000));
    req.extend_from_slice(b"\r\nmn\r\n");
    c.send(&req[..1000]);
    std::thread::sleep(Duration::from_millis(50));
    c.send(&req[1000..]);
    assert_eq!(c.read_line(), "SERVER_ERROR object too large for cache\r\n");
    assert_eq!(c.read_line(), "MN\r\n");
    // ...and the old value is gone, like memcached
    c.roundtrip(b"mg big\r\n", b"EN\r\n");
    // a value that fits
    let mut req = b"ms big 1000000 T0\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'b', 1_000_000));
    req.extend_from_slice(b"\r\nmg big s\r\n");
    c.roundtrip(&req, b"HD\r\nHD s1000000\r\n");
    // a value that spans several chunks comes back whole
    c.send(b"mg big v k\r\n");
    assert_eq!(c.read_line(), "VA 1000000 kbig\r\n");
    let v = c.read_exact(1_000_002);
    assert!(v[..1_000_000].iter().all(|&b| b == b'b') && v.ends_with(b"\r\n"));
    // the value may arrive byte by byte
    for &b in b"ms slow 5 T0\r\nhello\r\n" {
        c.send(&[b]);
    }
    assert_eq!(c.read_line(), "HD\r\n");
    c.roundtrip(b"mg slow v\r\n", b"VA 5\r\nhello\r\n");
}

#[test]
fn md_flags() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms k 3\r\nbar\r\nmd k\r\nmd k\r\n", b"HD\r\nHD\r\nNF\r\n");
    c.roundtrip(b"ms k 3\r\nbar\r\n", b"HD\r\n");
    c.roundtrip(b"md k C99999\r\n", b"EX\r\n");
    c.roundtrip(
        b"md k Oab k\r\nmd k Oab k\r\n",
        b"HD Oab kk\r\nNF Oab kk\r\n",
    );
    c.roundtrip(b"ms k 3\r\nbar\r\n", b"HD\r\n");
    let cas = cas_of(&mut c, "k");
    c.roundtrip(format!("md k C{cas} k\r\n").as_bytes(), b"HD kk\r\n");
    c.roundtrip(b"mg k\r\n", b"EN\r\n");
    // T without I changes nothing; flags that return nothing are accepted
    c.roundtrip(b"ms k 3 T100\r\nbar\r\n", b"HD\r\n");
    c.roundtrip(b"md nokey T5 v c t s f h l u\r\n", b"NF\r\n");
    let long = "a".repeat(251);
    for (req, rep) in [
        ("md k zz", "CLIENT_ERROR invalid or duplicate flag"),
        ("md k q q", "CLIENT_ERROR invalid or duplicate flag"),
        ("md k T", "CLIENT_ERROR invalid or duplicate flag"),
        ("md k C", "CLIENT_ERROR invalid or duplicate flag"),
        ("md k b", "CLIENT_ERROR invalid or duplicate flag"),
        (
            &format!("md {long}"),
            "CLIENT_ERROR bad command line format",
        ),
        (
            "md k P L c f h k l q s t u v C5 F1 T1 M5 I D1",
            "CLIENT_ERROR options flags too long",
        ),
    ] {
        c.roundtrip(
            format!("{req}\r\n").as_bytes(),
            format!("{rep}\r\n").as_bytes(),
        );
    }
    c.roundtrip(b"mg k v\r\n", b"VA 3\r\nbar\r\n");
}

#[test]
fn stale_while_revalidate_two_clients() {
    let s = Server::start(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    a.roundtrip(b"ms sw 3 T100\r\nold\r\n", b"HD\r\n");
    let cas0 = cas_of(&mut a, "sw");
    // invalidate: item stays, stale, new CAS, TTL 30
    a.roundtrip(b"md sw I T30\r\n", b"HD\r\n");
    a.send(b"mg sw c v t\r\n");
    let l = a.read_line();
    assert_line(&l, "VA 3 c* t~30 X W");
    let cas1: u64 = l.split(' ').nth(2).unwrap()[1..].parse().unwrap();
    assert!(cas1 > cas0);
    assert_eq!(a.read_line(), "old\r\n");
    // every other reader gets the stale value with Z (win already sent)
    for _ in 0..3 {
        b.send(b"mg sw c v t\r\n");
        expect(&mut b, &format!("VA 3 c{cas1} t~30 Z X"));
        assert_eq!(b.read_line(), "old\r\n");
    }
    a.roundtrip(b"mg sw v\r\n", b"VA 3 Z X\r\nold\r\n");
    // the winner recaches with its CAS: a fresh item, no flags
    a.roundtrip(
        format!("ms sw 3 C{cas1} T100\r\nnew\r\n").as_bytes(),
        b"HD\r\n",
    );
    b.roundtrip(b"mg sw v\r\n", b"VA 3\r\nnew\r\n");

    // a late writer with an older CAS and I: stored, but stale, keeping the
    // win token
    a.roundtrip(b"md sw I q\r\nmn\r\n", b"MN\r\n");
    b.roundtrip(b"mg sw v s\r\n", b"VA 3 s3 X W\r\nnew\r\n");
    a.roundtrip(b"ms sw 3 I C1\r\nxyz\r\n", b"HD\r\n");
    a.roundtrip(b"mg sw v\r\n", b"VA 3 Z X\r\nxyz\r\n");
    // without I an older CAS is refused
    a.roundtrip(b"ms sw 3 C1\r\nxyz\r\n", b"EX\r\n");
    // I alone (no C) is a plain set
    a.roundtrip(b"ms sw 3 I\r\nabc\r\nmg sw v\r\n", b"HD\r\nVA 3\r\nabc\r\n");
    // md I with C: only when the CAS matches
    a.roundtrip(b"md sw I C1\r\n", b"EX\r\n");
}

#[test]
fn vivify_on_miss_two_clients() {
    let s = Server::start(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    a.send(b"mg viv N30 v c t\r\n");
    let l = a.read_line();
    assert_line(&l, "VA 0 c* t~30 W");
    let cas: u64 = l.split(' ').nth(2).unwrap()[1..].parse().unwrap();
    assert_eq!(a.read_line(), "\r\n");
    b.send(b"mg viv N30 v c t\r\n");
    expect(&mut b, &format!("VA 0 c{cas} t~30 Z"));
    assert_eq!(b.read_line(), "\r\n");
    b.roundtrip(b"mg viv v\r\n", b"VA 0 Z\r\n\r\n");
    b.roundtrip(b"mg viv s k\r\n", b"HD s0 kviv Z\r\n");
    // the winner fills it in; later readers see a normal hit
    a.roundtrip(format!("ms viv 3 C{cas}\r\nabc\r\n").as_bytes(), b"HD\r\n");
    b.roundtrip(b"mg viv N30 v\r\n", b"VA 3\r\nabc\r\n");
    // without v: HD with W
    a.roundtrip(b"mg viv2 N30 s\r\n", b"HD s0 W\r\n");
    b.roundtrip(b"mg viv2 s\r\n", b"HD s0 Z\r\n");
    // q does not hide a vivified hit
    a.roundtrip(b"mg viv3 N30 q\r\nmn\r\n", b"HD W\r\nMN\r\n");
    // a TTL set after N wins; t before N shows the new item's TTL as unset
    a.roundtrip(b"mg viv4 t N30 T60\r\n", b"HD t-1 W\r\n");
    b.send(b"mg viv4 t\r\n");
    expect(&mut b, "HD t~60 Z");
}

#[test]
fn recache_flag() {
    let s = Server::start(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    a.roundtrip(b"ms rc 1 T10\r\nx\r\n", b"HD\r\n");
    // TTL 10 < 30: the first asker wins, the others see Z
    a.send(b"mg rc R30 v t\r\n");
    expect(&mut a, "VA 1 t~10 W");
    assert_eq!(a.read_line(), "x\r\n");
    b.send(b"mg rc R30 v t\r\n");
    expect(&mut b, "VA 1 t~10 Z");
    assert_eq!(b.read_line(), "x\r\n");
    b.roundtrip(b"mg rc R5 v\r\n", b"VA 1 Z\r\nx\r\n");
    // TTL above the threshold, or no TTL: no win
    a.roundtrip(
        b"ms rc2 1 T100\r\nx\r\nmg rc2 R30 v\r\n",
        b"HD\r\nVA 1\r\nx\r\n",
    );
    a.roundtrip(
        b"ms rc3 1 T0\r\nx\r\nmg rc3 R30 v\r\n",
        b"HD\r\nVA 1\r\nx\r\n",
    );
    // recaching clears the token
    a.roundtrip(
        b"ms rc 1 T100\r\ny\r\nmg rc R30 v\r\n",
        b"HD\r\nVA 1\r\ny\r\n",
    );
}

#[test]
fn ma_flags_and_modes() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ma n1\r\n", b"NF\r\n");
    c.roundtrip(b"ma n1 O9 k c t v\r\n", b"NF O9 kn1\r\n");
    // vivify with an initial value
    c.send(b"ma n1 N0 J10 v t c\r\n");
    expect(&mut c, "VA 2 t-1 c*");
    assert_eq!(c.read_line(), "10\r\n");
    c.roundtrip(
        b"ma n1 v\r\nma n1 v D5\r\nma n1 v MD D3\r\nma n1 v M- D100\r\nma n1 v M+\r\nma n1 v MI\r\n",
        b"VA 2\r\n11\r\nVA 2\r\n16\r\nVA 2\r\n13\r\nVA 1\r\n0\r\nVA 1\r\n1\r\nVA 1\r\n2\r\n",
    );
    // like incr/decr, a shorter number keeps the length, padded with spaces
    c.roundtrip(b"ma n1\r\nmg n1 v\r\n", b"HD\r\nVA 2\r\n3 \r\n");
    // incr wraps at 2^64
    c.roundtrip(b"ma n1 D18446744073709551615 v\r\n", b"VA 1\r\n2\r\n");
    // CAS
    let cas = cas_of(&mut c, "n1");
    c.roundtrip(b"ma n1 C99999 O9 k\r\n", b"EX O9 kn1\r\n");
    c.send(format!("ma n1 C{cas} c v\r\n").as_bytes());
    let l = c.read_line();
    assert_line(&l, "VA 1 c*");
    assert_ne!(l.trim_end(), format!("VA 1 c{cas}"));
    assert_eq!(c.read_line(), "3\r\n");
    assert_eq!(
        cas_of(&mut c, "n1"),
        l.trim_end()[6..].parse::<u64>().unwrap()
    );
    // TTL: t reports in flag order around T and N
    c.roundtrip(b"ms e1 1 T100\r\n1\r\n", b"HD\r\n");
    c.send(b"ma e1 t T50 v\r\n");
    expect(&mut c, "VA 1 t~100");
    assert_eq!(c.read_line(), "2\r\n");
    c.send(b"ma e1 t v\r\n");
    expect(&mut c, "VA 1 t~50");
    assert_eq!(c.read_line(), "3\r\n");
    c.roundtrip(b"ma new1 t N30 v\r\n", b"VA 1 t-1\r\n0\r\n");
    c.send(b"ma new2 N30 t v\r\n");
    expect(&mut c, "VA 1 t~30");
    assert_eq!(c.read_line(), "0\r\n");
    c.send(b"mg new1 t\r\n");
    expect(&mut c, "HD t~30");
    // decr keeps the length, padded with spaces, like incr/decr
    c.roundtrip(
        b"ms d 3\r\n100\r\nma d MD v\r\nmg d v\r\n",
        b"HD\r\nVA 2\r\n99\r\nVA 3\r\n99 \r\n",
    );
    // a number is read like strtoull: text after whitespace is ignored,
    // and the in-place result keeps the length
    c.roundtrip(
        b"ms g 7\r\n12 abc7\r\nma g v\r\nmg g v\r\n",
        b"HD\r\nVA 2\r\n13\r\nVA 7\r\n13     \r\n",
    );
    c.roundtrip(b"ms g 3\r\n+12\r\nma g v\r\n", b"HD\r\nVA 2\r\n13\r\n");
    c.roundtrip(
        b"ms g 3\r\n12x\r\nma g v\r\n",
        b"HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    // errors
    c.roundtrip(
        b"ms txt 3\r\nabc\r\nma txt v\r\n",
        b"HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    let long = "a".repeat(251);
    for (req, rep) in [
        ("ma n1 Md v", "CLIENT_ERROR invalid mode for ma M token"),
        ("ma n1 MX v", "CLIENT_ERROR invalid mode for ma M token"),
        ("ma n1 Mi v", "CLIENT_ERROR invalid mode for ma M token"),
        ("ma n1 M v", "CLIENT_ERROR invalid or duplicate flag"),
        ("ma n1 Dabc v", "CLIENT_ERROR invalid or duplicate flag"),
        ("ma n1 D-1 v", "CLIENT_ERROR invalid or duplicate flag"),
        (
            "ma n1 D18446744073709551616",
            "CLIENT_ERROR invalid or duplicate flag",
        ),
        ("ma n1 Jabc N0 v", "CLIENT_ERROR invalid or duplicate flag"),
        ("ma n1 zz", "CLIENT_ERROR invalid or duplicate flag"),
        ("ma n1 v v", "CLIENT_ERROR invalid or duplicate flag"),
        (
            &format!("ma {long}"),
            "CLIENT_ERROR bad command line format",
        ),
        (
            "ma k P L c f h k l q s t u v C5 F1 T1 M5 I D1 J1",
            "CLIENT_ERROR options flags too long",
        ),
    ] {
        c.roundtrip(
            format!("{req}\r\n").as_bytes(),
            format!("{rep}\r\n").as_bytes(),
        );
    }
    c.roundtrip(b"mg n1 v\r\n", b"VA 2\r\n3 \r\n");
}

#[test]
fn base64_keys() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    // "foob"
    c.send(b"ms Zm9vYg== 3 b k c\r\nbar\r\n");
    expect(&mut c, "HD kZm9vYg== b c*");
    c.roundtrip(
        b"mg Zm9vYg== b k v O1\r\n",
        b"VA 3 kZm9vYg== b O1\r\nbar\r\n",
    );
    // same item as the plain key
    c.roundtrip(b"mg foob v\r\n", b"VA 3\r\nbar\r\n");
    c.roundtrip(b"mg Zm9vYg== k b v\r\n", b"VA 3 kZm9vYg== b\r\nbar\r\n");
    c.roundtrip(b"mg bm9wZQ== b k O2\r\n", b"EN kbm9wZQ== b O2\r\n");
    c.roundtrip(
        b"md Zm9vYg== b k q\r\nmd Zm9vYg== b k\r\nmn\r\n",
        b"NF kZm9vYg== b\r\nMN\r\n",
    );
    // keys with bytes the text protocol cannot carry: a space, binary
    c.roundtrip(
        b"ms IA== 1 b\r\nx\r\nmg IA== b k v\r\n",
        b"HD\r\nVA 1 kIA== b\r\nx\r\n",
    );
    c.roundtrip(
        b"ms AAEC/w== 2 b\r\nyz\r\nmg AAEC/w== b v\r\n",
        b"HD\r\nVA 2\r\nyz\r\n",
    );
    c.roundtrip(b"ma bm9wZQ== b N0 k v\r\n", b"VA 1 kbm9wZQ== b\r\n0\r\n");
    for bad in ["Zm9vYg", "Zm9vYg=", "A===", "!!!!"] {
        c.roundtrip(
            format!("mg {bad} b v\r\n").as_bytes(),
            b"CLIENT_ERROR error decoding key\r\n",
        );
    }
    // the encoded key must fit in 250 bytes
    let k = "eHh4".repeat(63);
    c.roundtrip(
        format!("mg {k} b v\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    let k = "eHh4".repeat(62);
    c.roundtrip(format!("mg {k} b v\r\n").as_bytes(), b"EN\r\n");
}

#[test]
fn opaque_and_key_echo_pipelined() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms a 1\r\n1\r\n", b"HD\r\n");
    c.roundtrip(
        b"mg a O1 k v\r\nmg b O2 k v\r\nms c 1 O3 k\r\nx\r\nmd c k O4\r\nma d O5 N0 k\r\nmg a k O6 q\r\nmn\r\n",
        b"VA 1 O1 ka\r\n1\r\nEN O2 kb\r\nHD O3 kc\r\nHD kc O4\r\nHD O5 kd\r\nHD ka O6\r\nMN\r\n",
    );
}

#[test]
fn me_debug_dump() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms mek 5 T0 F3\r\nhello\r\n", b"HD\r\n");
    let cas = cas_of(&mut c, "mek");
    c.roundtrip(
        b"me mek\r\n",
        format!("ME mek exp=-1 la=0 cas={cas} fetch=yes cls=1 size=71\r\n").as_bytes(),
    );
    c.roundtrip(b"ms mek2 5 T100\r\nhello\r\n", b"HD\r\n");
    let cas = cas_of(&mut c, "mek2");
    c.send(b"me mek2\r\n");
    expect(
        &mut c,
        &format!("ME mek2 exp=~-98 la=0 cas={cas} fetch=yes cls=1 size=68"),
    );
    // a value that needs a bigger slab class
    let v = "v".repeat(500);
    c.roundtrip(format!("ms mek3 500\r\n{v}\r\n").as_bytes(), b"HD\r\n");
    c.send(b"me mek3\r\n");
    expect(&mut c, "ME mek3 exp=-1 la=0 cas=* fetch=no cls=9 size=563");
    c.roundtrip(b"me nokey\r\n", b"EN\r\n");
    c.roundtrip(b"me\r\n", b"CLIENT_ERROR bad command line format\r\n");
    c.roundtrip(b"me mek b\r\n", b"CLIENT_ERROR bad command line format\r\n");
    let long = "a".repeat(251);
    c.roundtrip(
        format!("me {long}\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    if !against_memcached() {
        // protocol.txt: with b the key is returned base64-encoded
        // (memcached 1.6.18 prints the raw binary key instead)
        c.send(b"me bWVrMg== b\r\n");
        expect(
            &mut c,
            &format!("ME bWVrMg== exp=~-98 la=* cas={cas} fetch=yes cls=1 size=68"),
        );
    }
}

#[test]
fn stats_are_shared_and_counted_like_memcached() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let keys = [
        "cmd_get",
        "cmd_set",
        "cmd_touch",
        "get_hits",
        "get_misses",
        "touch_hits",
        "delete_hits",
        "delete_misses",
        "incr_hits",
        "incr_misses",
        "decr_hits",
        "decr_misses",
        "cas_hits",
        "cas_misses",
        "cas_badval",
    ];
    let mut prev = stats_num(&mut c);
    let step = |c: &mut Conn,
                prev: &mut HashMap<String, i64>,
                req: &[u8],
                rep: &[u8],
                diff: &[(&str, i64)]| {
        c.roundtrip(req, rep);
        let cur = stats_num(c);
        for k in keys {
            let want = diff.iter().find(|(n, _)| *n == k).map(|d| d.1).unwrap_or(0);
            assert_eq!(
                cur[k] - prev[k],
                want,
                "{k} after {:?}",
                String::from_utf8_lossy(req)
            );
        }
        *prev = cur;
    };
    step(
        &mut c,
        &mut prev,
        b"mg a v\r\n",
        b"EN\r\n",
        &[("cmd_get", 1), ("get_misses", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"ms a 1\r\nx\r\n",
        b"HD\r\n",
        &[("cmd_set", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"mg a v\r\n",
        b"VA 1\r\nx\r\n",
        &[("cmd_get", 1), ("get_hits", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"mg a T30\r\n",
        b"HD\r\n",
        &[("cmd_touch", 1), ("touch_hits", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"mg b T30\r\n",
        b"EN\r\n",
        &[("cmd_get", 1), ("get_misses", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"mg b N30\r\n",
        b"HD W\r\n",
        &[("cmd_get", 1), ("get_hits", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"ms a 1 C999\r\nx\r\n",
        b"EX\r\n",
        &[("cmd_set", 1), ("cas_badval", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"ms zz 1 C999\r\nx\r\n",
        b"NF\r\n",
        &[("cmd_set", 1), ("cas_misses", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"ms a 1 ME\r\nx\r\n",
        b"NS\r\n",
        &[("cmd_set", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"md a C99999\r\n",
        b"EX\r\n",
        &[("delete_misses", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"md a\r\n",
        b"HD\r\n",
        &[("delete_hits", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"md a\r\n",
        b"NF\r\n",
        &[("delete_misses", 1)],
    );
    step(&mut c, &mut prev, b"md b I\r\n", b"HD\r\n", &[]);
    step(
        &mut c,
        &mut prev,
        b"ma c\r\n",
        b"NF\r\n",
        &[("incr_misses", 1)],
    );
    step(&mut c, &mut prev, b"ma c N0\r\n", b"HD\r\n", &[]);
    step(
        &mut c,
        &mut prev,
        b"ma c\r\n",
        b"HD\r\n",
        &[("incr_hits", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"ma c MD\r\n",
        b"HD\r\n",
        &[("decr_hits", 1)],
    );
    step(
        &mut c,
        &mut prev,
        b"ma d MD\r\n",
        b"NF\r\n",
        &[("decr_misses", 1)],
    );
    step(&mut c, &mut prev, b"mn\r\n", b"MN\r\n", &[]);
    let cas = cas_of(&mut c, "c");
    prev = stats_num(&mut c);
    step(
        &mut c,
        &mut prev,
        format!("ms c 1 C{cas}\r\n5\r\n").as_bytes(),
        b"HD\r\n",
        &[("cmd_set", 1), ("cas_hits", 1)],
    );
    // shared with the text protocol: same items, same CAS space
    step(
        &mut c,
        &mut prev,
        b"get c\r\n",
        b"VALUE c 0 1\r\n5\r\nEND\r\n",
        &[("cmd_get", 1), ("get_hits", 1)],
    );
    let before = stats_num(&mut c)["cmd_meta"];
    c.roundtrip(b"me c\r\n", b"ME c");
    c.read_line();
    assert_eq!(stats_num(&mut c)["cmd_meta"], before + 1);
}

#[test]
fn text_and_meta_share_items_and_cas() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"set t 5 0 3\r\nabc\r\n", b"STORED\r\n");
    c.send(b"gets t\r\n");
    let l = c.read_line();
    let cas: u64 = l.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    c.read_line();
    c.read_line();
    assert_eq!(cas_of(&mut c, "t"), cas);
    c.roundtrip(b"mg t v f\r\n", b"VA 3 f5\r\nabc\r\n");
    c.roundtrip(format!("ms t 3 C{cas} F6\r\nxyz\r\n").as_bytes(), b"HD\r\n");
    c.roundtrip(b"get t\r\n", b"VALUE t 6 3\r\nxyz\r\nEND\r\n");
    c.roundtrip(
        b"ms n 2\r\n41\r\nincr n 1\r\nma n v\r\n",
        b"HD\r\n42\r\nVA 2\r\n43\r\n",
    );
}

#[test]
fn explicit_cas_e_flag() {
    if against_memcached() {
        return; // E arrived after memcached 1.6.18
    }
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms e 1 E12345 c\r\nx\r\n", b"HD c12345\r\n");
    c.roundtrip(b"mg e c\r\n", b"HD c12345\r\n");
    c.roundtrip(b"ms e 1 C12345 E777 c\r\ny\r\n", b"HD c777\r\n");
    c.roundtrip(
        b"md e I E888\r\nmg e c v\r\n",
        b"HD\r\nVA 1 c888 X W\r\ny\r\n",
    );
    c.roundtrip(b"mg viv N30 E4242 c\r\n", b"HD c4242 W\r\n");
    c.roundtrip(b"ma cnt N0 E99 c v\r\n", b"VA 1 c99\r\n0\r\n");
    c.roundtrip(b"ma cnt E100 c\r\n", b"HD c100\r\n");
    c.roundtrip(
        b"ms e 1 Eabc\r\nx\r\n",
        b"CLIENT_ERROR bad token in command line format\r\n",
    );
}

#[test]
fn md_x_removes_value_keeps_item() {
    if against_memcached() {
        return; // md x arrived after memcached 1.6.18
    }
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"ms x 3 F5 T100\r\nabc\r\n", b"HD\r\n");
    c.roundtrip(b"md x x\r\n", b"HD\r\n");
    c.send(b"mg x v f t\r\n");
    expect(&mut c, "VA 0 f0 t~100");
    assert_eq!(c.read_line(), "\r\n");
    c.roundtrip(b"md nokey x\r\n", b"NF\r\n");
}

/// Cache-aside with stampede protection: several clients read each key with
/// `mg <key> v c N30`; only the one that gets `W` computes the value and
/// stores it; the others (`Z`, empty) back off and read again. Each key must
/// be computed exactly once and every client must end with its value.
#[test]
fn cache_aside_stampede_protection() {
    const THREADS: usize = 8;
    const KEYS: usize = 40;
    let s = Server::start(&[]);
    let port = s.port;
    let computed: Arc<Vec<AtomicUsize>> =
        Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect());
    let deadline = Instant::now() + Duration::from_secs(30);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let computed = computed.clone();
            std::thread::spawn(move || {
                let mut c = Conn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                for i in 0..KEYS {
                    // threads walk the keys in different orders
                    let k = (i + t * 7) % KEYS;
                    let want = format!("value-of-{k}");
                    loop {
                        assert!(Instant::now() < deadline, "stampede loop timed out");
                        c.send(format!("mg ca{k} v c N30 R5\r\n").as_bytes());
                        let head = c.read_line();
                        let toks: Vec<&str> = head.trim_end().split(' ').collect();
                        assert_eq!(toks[0], "VA", "{head:?}");
                        let len: usize = toks[1].parse().unwrap();
                        let data = c.read_exact(len + 2);
                        let won = toks.contains(&"W");
                        if won {
                            computed[k].fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(5)); // "expensive" work
                            let cas = toks.iter().find_map(|t| t.strip_prefix('c')).unwrap();
                            c.send(
                                format!("ms ca{k} {} C{cas} T300\r\n{want}\r\n", want.len())
                                    .as_bytes(),
                            );
                            assert_eq!(c.read_line(), "HD\r\n");
                            break;
                        }
                        if len > 0 && !toks.contains(&"Z") {
                            assert_eq!(&data[..len], want.as_bytes());
                            break;
                        }
                        // someone else is computing: back off and retry
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    for (k, n) in computed.iter().enumerate() {
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "key ca{k} computed {n:?} times"
        );
    }
    let mut c = s.connect();
    c.roundtrip(b"mg ca3 v\r\n", b"VA 10\r\nvalue-of-3\r\n");
}

/// The scenarios of memcached's own t/metaget.t (mg/ms/md/ma/mn era),
/// rewritten against this harness: gat order, hit/no-bump, quiet pipelines,
/// vivify on quiet, opaque, invalid flags, quit inside a pipeline.
#[test]
fn memcached_metaget_t_scenarios() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    // a blank command is an error
    c.roundtrip(b" \n", b"ERROR\r\n");
    c.roundtrip(b"set foo 0 0 2\r\nhi\r\nme none\r\n", b"STORED\r\nEN\r\n");
    c.send(b"me foo\r\n");
    assert!(c.read_line().starts_with("ME foo "));
    c.roundtrip(
        b"set foo2 0 90 2\r\nho\r\nmg foo2 s v\r\n",
        b"STORED\r\nVA 2 s2\r\nho\r\n",
    );
    // wrong CAS answers EX with c0; the right one stores
    c.roundtrip(b"ms msetcas 2\r\nbo\r\n", b"HD\r\n");
    let cas = cas_of(&mut c, "msetcas");
    c.roundtrip(
        format!("ms msetcas 2 c C{}\r\nio\r\n", cas + 10).as_bytes(),
        b"EX c0\r\n",
    );
    c.send(format!("ms msetcas 2 c C{cas}\r\nio\r\n").as_bytes());
    expect(&mut c, "HD c*");
    // katakana key in base64: only reachable decoded, echoed encoded
    c.roundtrip(b"ms 44OG44K544OI 2 b\r\npo\r\n", b"HD\r\n");
    c.roundtrip(b"mg 44OG44K544OI v\r\n", b"EN\r\n");
    c.roundtrip(
        b"mg 44OG44K544OI b v k\r\n",
        b"VA 2 k44OG44K544OI b\r\npo\r\n",
    );
    // ma: miss, seed, increments, decrement to 0, quiet
    c.roundtrip(b"ma mo\r\nma mo D1\r\n", b"NF\r\nNF\r\n");
    c.roundtrip(b"set mo 0 0 1\r\n1\r\nma mo\r\n", b"STORED\r\nHD\r\n");
    c.roundtrip(
        b"set mo 0 0 1\r\nq\r\nma mo\r\n",
        b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    c.roundtrip(b"ma mu N90\r\n", b"HD\r\n");
    c.send(b"mg mu s t v Ofoo k\r\n");
    expect(&mut c, "VA 1 s1 t~90 Ofoo kmu");
    assert_eq!(c.read_line(), "0\r\n");
    c.send(b"ma mu T300 v t\r\n");
    expect(&mut c, "VA 1 t~300");
    assert_eq!(c.read_line(), "1\r\n");
    for (flags, want) in [
        ("N0 J13 v t", "13"),
        ("N0 J13 v t", "14"),
        ("N0 J13 v t D30", "44"),
        ("N0 J13 v t MD D22", "22"),
        ("N0 J13 v t MD D9000", "0"),
    ] {
        c.send(format!("ma mi {flags}\r\n").as_bytes());
        expect(&mut c, &format!("VA {} t-1", want.len()));
        assert_eq!(c.read_line(), format!("{want}\r\n"));
    }
    c.roundtrip(b"ma mi q D1\r\nmn\r\n", b"MN\r\n");
    // gat: T before t reports the new TTL
    c.roundtrip(b"ms gatkey 4 T100\r\nooom\r\n", b"HD\r\n");
    c.send(b"mg gatkey s v T300 t\r\n");
    expect(&mut c, "VA 4 s4 t~300");
    assert_eq!(c.read_line(), "ooom\r\n");
    // quiet: nominal replies vanish; an error still shows
    c.send(b"ms quiet 2 q\r\nmo\r\nmd quiet q\r\nmg quiet s v q\r\nms quiet\r\n");
    assert_eq!(c.read_line(), "CLIENT_ERROR bad command line format\r\n");
    c.roundtrip(
        b"ms quiet 2 q\r\nbo\r\nmg quiet v q\r\nmg quiet v q\r\nmg quietmiss v q\r\nmn\r\n",
        b"VA 2\r\nbo\r\nVA 2\r\nbo\r\nMN\r\n",
    );
    // q does not hide a vivified miss
    c.send(b"mg quietautov s N30 t q\r\n");
    expect(&mut c, "HD s0 t~30 W");
    c.roundtrip(
        b"mg foo m o o o o o o o o o\r\n",
        b"CLIENT_ERROR invalid flag\r\n",
    );
    // quit inside a pipeline: replies before it, nothing after
    c.roundtrip(b"ms foo 2 T100\r\nna\r\n", b"HD\r\n");
    c.send(b"mg foo s\r\nmg foo s\r\nquit\r\nmg foo s\r\n");
    assert_eq!(c.read_line(), "HD s2\r\n");
    assert_eq!(c.read_line(), "HD s2\r\n");
    assert!(c.is_closed());
}

/// With -C every CAS is 0: meta replies say c0, C0 matches for md, while
/// ms with a CAS is refused like memcached's.
#[test]
fn meta_with_cas_disabled() {
    let s = Server::start(&["-C"]);
    let mut c = s.connect();
    c.roundtrip(
        b"ms a 1 c\r\nx\r\nmg a c v\r\n",
        b"HD c0\r\nVA 1 c0\r\nx\r\n",
    );
    c.roundtrip(b"md a I\r\nmg a c\r\n", b"HD\r\nHD c0 X W\r\n");
    c.roundtrip(b"ma n N0 c v\r\n", b"VA 1 c0\r\n0\r\n");
    c.roundtrip(
        b"ms a 1 C0 c\r\ny\r\nms a 1 C5\r\ny\r\n",
        b"EX c0\r\nEX\r\n",
    );
    c.roundtrip(
        b"ma n C5\r\nma n C0\r\nmd n C3\r\nmd a C0\r\n",
        b"EX\r\nHD\r\nEX\r\nHD\r\n",
    );
    c.roundtrip(
        b"me n\r\n",
        b"ME n exp=-1 la=0 cas=0 fetch=no cls=1 size=53\r\n",
    );
}
