//! Large values over real sockets: memcrab sends big values straight from
//! the item to the socket (no copy into its output buffer) and reads big
//! data blocks straight into a fresh item. Whatever path the bytes take,
//! the wire must carry exactly what memcached sends: values byte-exact,
//! replies in request order, counters right, nothing leaked when a client
//! misbehaves. Every test here also passes with
//! `MEMCRAB_TEST_SERVER=memcached`.
mod common;

use common::{Conn, Server};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// A value of `len` bytes that differs per key and per position, so a
/// swapped, shifted or cut value shows.
fn value_for(key: &str, len: usize) -> Vec<u8> {
    let seed = key
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let mut v: Vec<u8> = (0..len as u32)
        .map(|i| b'a' + (seed.wrapping_add(i.wrapping_mul(2_654_435_761) >> 7) % 26) as u8)
        .collect();
    let tag = format!("<{key}>");
    v[..tag.len()].copy_from_slice(tag.as_bytes());
    v
}

fn set_req(req: &mut Vec<u8>, key: &str, v: &[u8]) {
    req.extend_from_slice(format!("set {key} 0 0 {}\r\n", v.len()).as_bytes());
    req.extend_from_slice(v);
    req.extend_from_slice(b"\r\n");
}

fn set(c: &mut Conn, key: &str, v: &[u8]) {
    let mut req = Vec::new();
    set_req(&mut req, key, v);
    c.roundtrip(&req, b"STORED\r\n");
}

fn value_reply(key: &str, v: &[u8]) -> Vec<u8> {
    let mut r = format!("VALUE {key} 0 {}\r\n", v.len()).into_bytes();
    r.extend_from_slice(v);
    r.extend_from_slice(b"\r\n");
    r
}

/// Sends `req` from another thread (a big pipelined request would fill the
/// socket buffers both ways if we wrote it all before reading) and checks
/// that exactly `want` comes back.
fn pipelined_roundtrip(c: &mut Conn, req: Vec<u8>, want: &[u8]) {
    let mut w = c.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || w.write_all(&req).expect("write"));
    let got = c.read_exact(want.len());
    sender.join().expect("sender");
    assert!(got == want, "{}", first_difference(&got, want));
}

fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
    let show = |v: &[u8]| {
        String::from_utf8_lossy(&v[at.saturating_sub(40)..(at + 40).min(v.len())]).into_owned()
    };
    format!(
        "reply differs at byte {at}: got {:?}, want {:?}",
        show(got),
        show(want)
    )
}

fn stat(c: &mut Conn, group: &str, name: &str) -> u64 {
    c.stats(group)
        .get(name)
        .unwrap_or_else(|| panic!("no stat {name}"))
        .parse()
        .expect("numeric")
}

/// 100 KB and chained 1.5 MB values through get, gets, gat, gats and mg,
/// pipelined with small requests before and after in one write.
#[test]
fn large_values_round_trip_pipelined_with_small_requests() {
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "2"]);
    let mut c = s.connect();
    let big = value_for("big", 100 * 1024);
    let huge = value_for("huge", 1_500_000);
    set(&mut c, "big", &big);
    set(&mut c, "huge", &huge);
    set(&mut c, "s", b"tiny");
    let cas_of = |c: &mut Conn, key: &str| -> u64 {
        c.send(format!("gets {key}\r\n").as_bytes());
        let head = c.read_line();
        let len: usize = head
            .split_whitespace()
            .nth(3)
            .expect("len")
            .parse()
            .expect("n");
        c.read_exact(len + 2);
        assert_eq!(c.read_line(), "END\r\n");
        head.split_whitespace()
            .nth(4)
            .expect("cas")
            .trim()
            .parse()
            .expect("cas")
    };
    let cas_big = cas_of(&mut c, "big");
    let cas_huge = cas_of(&mut c, "huge");

    let mut req = Vec::new();
    let mut want = Vec::new();
    c.send(b"version\r\n");
    let version = c.read_line();
    for _ in 0..3 {
        req.extend_from_slice(b"get s\r\nget big\r\n");
        want.extend_from_slice(b"VALUE s 0 4\r\ntiny\r\nEND\r\n");
        want.extend(value_reply("big", &big));
        want.extend_from_slice(b"END\r\n");
        req.extend_from_slice(b"gets huge big\r\nversion\r\n");
        want.extend(format!("VALUE huge 0 {} {cas_huge}\r\n", huge.len()).into_bytes());
        want.extend_from_slice(&huge);
        want.extend(format!("\r\nVALUE big 0 {} {cas_big}\r\n", big.len()).into_bytes());
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\nEND\r\n");
        want.extend_from_slice(version.as_bytes());
        req.extend_from_slice(b"mg big v k s f O77\r\nmn\r\nmg huge v c\r\nmg s v\r\n");
        want.extend(format!("VA {} kbig s{} f0 O77\r\n", big.len(), big.len()).into_bytes());
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\nMN\r\n");
        want.extend(format!("VA {} c{cas_huge}\r\n", huge.len()).into_bytes());
        want.extend_from_slice(&huge);
        want.extend_from_slice(b"\r\nVA 4\r\ntiny\r\n");
        req.extend_from_slice(b"gat 0 big\r\ngats 0 huge\r\nget nope\r\n");
        want.extend(value_reply("big", &big));
        want.extend_from_slice(b"END\r\n");
        want.extend(format!("VALUE huge 0 {} {cas_huge}\r\n", huge.len()).into_bytes());
        want.extend_from_slice(&huge);
        want.extend_from_slice(b"\r\nEND\r\nEND\r\n");
    }
    pipelined_roundtrip(&mut c, req, &want);
    c.assert_alive("pipelined large values");
}

/// A client that sends many large gets and does not read for a while gets
/// every reply, complete and in order, once it reads.
#[test]
fn slow_reader_gets_every_reply_in_order() {
    let s = Server::start(&["-m", "64", "-t", "1"]);
    let mut c = s.connect();
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let vals: Vec<Vec<u8>> = keys.iter().map(|k| value_for(k, 100 * 1024 + 17)).collect();
    for (k, v) in keys.iter().zip(&vals) {
        set(&mut c, k, v);
    }
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..60 {
        let k = i * 5 % keys.len();
        req.extend_from_slice(format!("get {}\r\nmn\r\n", keys[k]).as_bytes());
        want.extend(value_reply(&keys[k], &vals[k]));
        want.extend_from_slice(b"END\r\nMN\r\n");
    }
    // ~6 MB of replies: far more than the socket buffers hold.
    let mut w = c.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || w.write_all(&req).expect("write"));
    std::thread::sleep(Duration::from_millis(700));
    // Another client is served meanwhile.
    let mut other = s.connect();
    other.roundtrip(
        b"get k1\r\n",
        &[value_reply("k1", &vals[1]), b"END\r\n".to_vec()].concat(),
    );
    let mut got = Vec::new();
    while got.len() < want.len() {
        let n = (want.len() - got.len()).min(300_000);
        got.extend(c.read_exact(n));
        std::thread::sleep(Duration::from_millis(20));
    }
    sender.join().expect("sender");
    assert!(got == want, "{}", first_difference(&got, &want));
    c.assert_alive("slow reader");
}

/// One multi-get of many large values, read slowly: streamed under the
/// output limit, byte-exact and in order.
#[test]
fn multiget_of_many_large_values_with_back_pressure() {
    let s = Server::start(&["-m", "64", "-t", "2"]);
    let mut c = s.connect();
    let keys: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    let vals: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| value_for(k, 90_000 + 1000 * k.len()))
        .collect();
    for (k, v) in keys.iter().zip(&vals) {
        set(&mut c, k, v);
    }
    let mut line = b"get".to_vec();
    let mut want = Vec::new();
    for i in 0..90 {
        let k = (i * 7 + 3) % keys.len();
        line.push(b' ');
        line.extend_from_slice(keys[k].as_bytes());
        want.extend(value_reply(&keys[k], &vals[k]));
    }
    line.extend_from_slice(b"\r\nget m0\r\n");
    want.extend_from_slice(b"END\r\n");
    want.extend(value_reply("m0", &vals[0]));
    want.extend_from_slice(b"END\r\n");
    c.send(&line);
    let mut got = Vec::new();
    while got.len() < want.len() {
        let n = (want.len() - got.len()).min(500_000);
        got.extend(c.read_exact(n));
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(got == want, "{}", first_difference(&got, &want));
    let st = c.stats("");
    assert_eq!(st["get_hits"].parse::<u64>().expect("n"), 91);
}

/// A too-long key after large values: the whole line answers one error and
/// none of its values, even though those values would be sent directly.
#[test]
fn long_key_after_large_values_is_one_error() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.connect();
    let big = value_for("big", 200 * 1024);
    set(&mut c, "big", &big);
    let long = "x".repeat(251);
    c.roundtrip(
        format!("get big big {long} big\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    let mut want = value_reply("big", &big);
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get big\r\n", &want);
}

/// `bytes_written` counts what the client receives, also for values sent
/// straight from the item.
#[test]
fn bytes_written_counts_directly_sent_values() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.connect();
    let big = value_for("big", 300 * 1024);
    set(&mut c, "big", &big);
    // The first `stats` reply is written after its own sample was taken.
    c.send(b"stats\r\n");
    let mut first = Vec::new();
    let before: u64 = loop {
        let l = c.read_line();
        first.extend_from_slice(l.as_bytes());
        if let Some(v) = l.strip_prefix("STAT bytes_written ") {
            break v.trim().parse().expect("n");
        }
    };
    loop {
        let l = c.read_line();
        first.extend_from_slice(l.as_bytes());
        if l == "END\r\n" {
            break;
        }
    }
    let mut want = Vec::new();
    for _ in 0..5 {
        want.extend(value_reply("big", &big));
        want.extend_from_slice(b"END\r\n");
    }
    c.roundtrip(&b"get big\r\n".repeat(5), &want);
    let after = stat(&mut c, "", "bytes_written");
    assert_eq!(after - before, (first.len() + want.len()) as u64);
}

/// Writers store whole values of one byte each; readers on other
/// connections must never see a value mixing two writes.
#[test]
fn concurrent_sets_and_gets_of_one_big_key_are_never_torn() {
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "2"]);
    let port = s.port;
    let sizes = [100 * 1024, 700 * 1024, 1_200_000];
    let mut threads = Vec::new();
    for t in 0..2 {
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
            for i in 0..40 {
                let v = vec![b'A' + ((t * 40 + i) % 26) as u8; sizes[(t + i) % sizes.len()]];
                set(&mut c, "shared", &v);
            }
        }));
    }
    for _ in 0..2 {
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
            for _ in 0..60 {
                for cmd in ["get shared\r\n", "mg shared v\r\n"] {
                    c.send(cmd.as_bytes());
                    let head = c.read_line();
                    if head == "END\r\n" || head == "EN\r\n" {
                        continue;
                    }
                    let len: usize = if head.starts_with("VA ") {
                        head.split_whitespace().nth(1)
                    } else {
                        head.split_whitespace().nth(3)
                    }
                    .expect("len")
                    .parse()
                    .expect("n");
                    let body = c.read_exact(len + 2);
                    assert!(sizes.contains(&len), "length {len}");
                    assert!(body[..len].iter().all(|&b| b == body[0]), "torn value");
                    assert_eq!(&body[len..], b"\r\n");
                    if head.starts_with("VALUE") {
                        assert_eq!(c.read_line(), "END\r\n");
                    }
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    s.connect().assert_alive("concurrent big sets/gets");
}

/// Clients that go away in the middle of a large reply do not hurt the
/// server or other clients.
#[test]
fn client_closing_mid_reply_leaves_server_healthy() {
    let s = Server::start(&["-m", "64", "-I", "2m"]);
    let mut c = s.connect();
    let big = value_for("big", 1_500_000);
    set(&mut c, "big", &big);
    for _ in 0..20 {
        let mut d = s.connect();
        d.send(&b"get big big big\r\n".repeat(4));
        let _ = d.read_exact(1000);
        drop(d);
    }
    let mut want = value_reply("big", &big);
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get big\r\n", &want);
    assert_eq!(stat(&mut c, "", "curr_items"), 1);
}
