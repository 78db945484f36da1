//! Large values over real sockets: memcrab sends big values straight from
//! the item to the socket (no copy into its output buffer) and reads big
//! data blocks straight into a fresh item. Whatever path the bytes take,
//! the wire must carry exactly what memcached sends: values byte-exact,
//! replies in request order, counters right, nothing leaked when a client
//! misbehaves. Every test here also passes with
//! `MEMCRAB_TEST_SERVER=memcached`.
mod common;

use common::{set_req, value_for, value_reply, Conn, Server};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn set(c: &mut Conn, key: &str, v: &[u8]) {
    let mut req = Vec::new();
    set_req(&mut req, key, v);
    c.roundtrip(&req, b"STORED\r\n");
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

/// `stats` once: `bytes_written` (sampled before this reply is written)
/// and the length of the reply itself.
fn bytes_written_sample(c: &mut Conn) -> (u64, u64) {
    c.send(b"stats\r\n");
    let (mut value, mut len) = (None, 0u64);
    loop {
        let l = c.read_line();
        len += l.len() as u64;
        if let Some(v) = l.strip_prefix("STAT bytes_written ") {
            value = v.trim().parse().ok();
        }
        if l == "END\r\n" {
            return (value.expect("bytes_written"), len);
        }
    }
}

/// `bytes_written` counts what the client receives, also for values sent
/// straight from the item. A worker counts bytes just after the kernel took
/// them, so a client may read them a moment before the count moves (the
/// start-up probe's reply, our own replies): samples are taken until the
/// count has caught up, never loosening the exact total.
#[test]
fn bytes_written_counts_directly_sent_values() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.connect();
    let big = value_for("big", 300 * 1024);
    set(&mut c, "big", &big);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    // A baseline after which nothing but our own replies is counted: two
    // samples apart by exactly the first one's reply.
    let (mut before, mut first) = bytes_written_sample(&mut c);
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let (v, len) = bytes_written_sample(&mut c);
        let settled = v == before + first;
        (before, first) = (v, len);
        if settled {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bytes_written never settled"
        );
    }
    let mut want = Vec::new();
    for _ in 0..5 {
        want.extend(value_reply("big", &big));
        want.extend_from_slice(b"END\r\n");
    }
    c.roundtrip(&b"get big\r\n".repeat(5), &want);
    // Exactly the baseline's reply, the five values, and every stats reply
    // sent since.
    let mut expect = before + first + want.len() as u64;
    loop {
        let (v, len) = bytes_written_sample(&mut c);
        if v == expect {
            break;
        }
        assert!(
            v < expect && std::time::Instant::now() < deadline,
            "bytes_written {v}, expected {expect}"
        );
        expect += len;
        std::thread::sleep(Duration::from_millis(10));
    }
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

// ---- large data blocks (read straight into the item by memcrab) ----------

/// Sends `bytes` in pieces of 1..=`max` bytes (deterministic sizes), pausing
/// now and then so the server sees the block arrive in many reads.
fn send_in_pieces(c: &mut Conn, bytes: &[u8], max: usize) {
    let mut seed: u32 = 12345;
    let mut i = 0;
    let mut n = 0;
    while i < bytes.len() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let len = (1 + (seed >> 8) as usize % max).min(bytes.len() - i);
        c.send(&bytes[i..i + len]);
        i += len;
        n += 1;
        if n % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn used_chunks(c: &mut Conn) -> u64 {
    c.stats("slabs")
        .iter()
        .filter(|(k, _)| k.ends_with(":used_chunks"))
        .map(|(_, v)| v.parse::<u64>().expect("n"))
        .sum()
}

/// Waits up to 3 s for `f` to hold (the server notices closed sockets
/// asynchronously).
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// set / add / replace / cas / ms with large blocks trickling in: stored
/// byte-exact, with the usual replies, pipelined with small requests.
#[test]
fn large_sets_arriving_in_small_pieces() {
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "2"]);
    let mut c = s.connect();
    for (key, len, max) in [
        ("p1", 100 * 1024, 3000),
        ("p2", 1_500_000, 40_000),
        ("p3", 16 * 1024 + 1, 700),
    ] {
        let v = value_for(key, len);
        let mut req = b"get nope\r\n".to_vec();
        set_req(&mut req, key, &v);
        req.extend_from_slice(b"mn\r\n");
        send_in_pieces(&mut c, &req, max);
        assert_eq!(c.read_line(), "END\r\n");
        assert_eq!(c.read_line(), "STORED\r\n");
        assert_eq!(c.read_line(), "MN\r\n");
        let mut want = value_reply(key, &v);
        want.extend_from_slice(b"END\r\n");
        c.roundtrip(format!("get {key}\r\n").as_bytes(), &want);
    }
    // add on an existing key, replace on a missing one: refused, nothing changes.
    let old = value_for("p1", 100 * 1024);
    let new = value_for("new", 100 * 1024);
    let block = |cmd: &str, v: &[u8]| {
        let mut r = cmd.as_bytes().to_vec();
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
        r
    };
    send_in_pieces(&mut c, &block("add p1 0 0 102400\r\n", &new), 5000);
    assert_eq!(c.read_line(), "NOT_STORED\r\n");
    send_in_pieces(&mut c, &block("replace missing 0 0 102400\r\n", &new), 5000);
    assert_eq!(c.read_line(), "NOT_STORED\r\n");
    c.roundtrip(b"get missing\r\n", b"END\r\n");
    let mut want = value_reply("p1", &old);
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get p1\r\n", &want);
    // replace, flags and noreply.
    send_in_pieces(
        &mut c,
        &block("replace p1 42 0 102400 noreply\r\n", &new),
        5000,
    );
    let mut want = format!("VALUE p1 42 {}\r\n", new.len()).into_bytes();
    want.extend_from_slice(&new);
    want.extend_from_slice(b"\r\nEND\r\n");
    c.roundtrip(b"get p1\r\n", &want);
    // cas: a stale unique is refused, the current one stores.
    c.send(b"gets p1\r\n");
    let head = c.read_line();
    let unique: u64 = head
        .split_whitespace()
        .nth(4)
        .expect("cas")
        .parse()
        .expect("n");
    c.read_exact(new.len() + 2);
    assert_eq!(c.read_line(), "END\r\n");
    send_in_pieces(
        &mut c,
        &block(&format!("cas p1 0 0 102400 {}\r\n", unique + 1000), &old),
        5000,
    );
    assert_eq!(c.read_line(), "EXISTS\r\n");
    send_in_pieces(
        &mut c,
        &block(&format!("cas p1 0 0 102400 {unique}\r\n"), &old),
        5000,
    );
    assert_eq!(c.read_line(), "STORED\r\n");
    send_in_pieces(&mut c, &block("cas nokey 0 0 102400 1\r\n", &old), 5000);
    assert_eq!(c.read_line(), "NOT_FOUND\r\n");
    // meta ms with flags, then mg.
    let mv = value_for("meta", 300 * 1024);
    send_in_pieces(
        &mut c,
        &block(&format!("ms mk {} F7 T0 O9 k\r\n", mv.len()), &mv),
        9000,
    );
    assert_eq!(c.read_line(), "HD O9 kmk\r\n");
    let mut want = format!("VA {} f7\r\n", mv.len()).into_bytes();
    want.extend_from_slice(&mv);
    want.extend_from_slice(b"\r\n");
    c.roundtrip(b"mg mk v f\r\n", &want);
    send_in_pieces(
        &mut c,
        &block(
            &format!("ms mk {} ME\r\n", mv.len()),
            &value_for("other", mv.len()),
        ),
        9000,
    );
    assert_eq!(c.read_line(), "NS\r\n");
    let st = c.stats("");
    assert_eq!(st["curr_items"], "4", "{st:?}");
}

/// add and cas are decided when the block is complete (memcached's
/// `complete_nread`), not when the command line arrives.
#[test]
fn store_semantics_are_evaluated_when_the_block_completes() {
    let s = Server::start(&["-m", "64"]);
    let mut a = s.connect();
    let mut b = s.connect();
    let v = value_for("v", 200 * 1024);
    a.send(format!("add k 0 0 {}\r\n", v.len()).as_bytes());
    a.send(&v[..50_000]);
    std::thread::sleep(Duration::from_millis(50));
    b.roundtrip(b"set k 0 0 1\r\nb\r\n", b"STORED\r\n");
    a.send(&v[50_000..]);
    a.roundtrip(b"\r\n", b"NOT_STORED\r\n");
    b.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nb\r\nEND\r\n");
    // cas: the unique changes while the block is on its way.
    b.send(b"gets k\r\n");
    let head = b.read_line();
    let unique: u64 = head
        .split_whitespace()
        .nth(4)
        .expect("cas")
        .trim()
        .parse()
        .expect("n");
    b.read_exact(3);
    assert_eq!(b.read_line(), "END\r\n");
    a.send(format!("cas k 0 0 {} {unique}\r\n", v.len()).as_bytes());
    a.send(&v[..100_000]);
    std::thread::sleep(Duration::from_millis(50));
    b.roundtrip(b"set k 0 0 1\r\nc\r\n", b"STORED\r\n");
    a.send(&v[100_000..]);
    a.roundtrip(b"\r\n", b"EXISTS\r\n");
    b.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nc\r\nEND\r\n");
    // A reader never sees the half-arrived value.
    a.send(format!("set k 0 0 {}\r\n", v.len()).as_bytes());
    a.send(&v[..150_000]);
    std::thread::sleep(Duration::from_millis(50));
    b.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nc\r\nEND\r\n");
    a.send(&v[150_000..]);
    a.roundtrip(b"\r\n", b"STORED\r\n");
    let mut want = value_reply("k", &v);
    want.extend_from_slice(b"END\r\n");
    b.roundtrip(b"get k\r\n", &want);
}

/// A large block not ended by "\r\n" answers `CLIENT_ERROR bad data chunk`
/// like a small one, stores nothing, frees its memory, and the connection
/// goes on with the bytes after it.
#[test]
fn large_block_with_bad_terminator() {
    let s = Server::start(&["-m", "64", "-I", "2m"]);
    let mut c = s.connect();
    let old = value_for("old", 1000);
    set(&mut c, "k", &old);
    let base = used_chunks(&mut c);
    for (len, tail) in [
        (100 * 1024, &b"XY"[..]),
        (1_200_000, b"\rX"),
        (64 * 1024, b"\n\r"),
    ] {
        let v = value_for("bad", len);
        let mut req = format!("set k 0 0 {len}\r\n").into_bytes();
        req.extend_from_slice(&v);
        req.extend_from_slice(tail);
        req.extend_from_slice(b"get k\r\n");
        send_in_pieces(&mut c, &req, 20_000);
        assert_eq!(c.read_line(), "CLIENT_ERROR bad data chunk\r\n");
        let mut want = value_reply("k", &old);
        want.extend_from_slice(b"END\r\n");
        assert_eq!(c.read_exact(want.len()), want);
    }
    assert_eq!(used_chunks(&mut c), base);
    c.assert_alive("bad terminators");
}

/// Clients that disconnect in the middle of a large data block leave no
/// item and no memory behind, and the server keeps serving.
#[test]
fn disconnect_mid_block_leaks_nothing() {
    let s = Server::start(&["-m", "64", "-I", "2m", "-t", "2"]);
    let mut c = s.connect();
    set(&mut c, "keep", b"x");
    let base = used_chunks(&mut c);
    let v = value_for("gone", 1_500_000);
    for i in 0..30 {
        let mut d = s.connect();
        let len = [100 * 1024, 700 * 1024, 1_500_000][i % 3];
        d.send(format!("set gone{i} 0 0 {len}\r\n").as_bytes());
        d.send(&v[..len / 2 + i]);
        if i % 2 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(d);
    }
    assert!(
        eventually(|| used_chunks(&mut c) == base),
        "used chunks {} vs {base} before",
        used_chunks(&mut c)
    );
    assert_eq!(stat(&mut c, "", "curr_items"), 1);
    for i in 0..30 {
        c.roundtrip(format!("get gone{i}\r\n").as_bytes(), b"END\r\n");
    }
    // Memory is still usable: fill it with large values.
    for i in 0..80 {
        set(&mut c, &format!("after{i}"), &v[..700 * 1024]);
    }
    c.assert_alive("disconnects mid block");
}

/// Out of memory when the block's item would be allocated: the same reply
/// as for any set, the block is swallowed, the connection goes on.
#[test]
fn large_set_without_memory_answers_out_of_memory() {
    let s = Server::start(&["-m", "8", "-M"]);
    let mut c = s.connect();
    let v = value_for("v", 200 * 1024);
    let mut oom = 0;
    for i in 0..80 {
        let mut req = format!("set k{i} 0 0 {}\r\n", v.len()).into_bytes();
        req.extend_from_slice(&v);
        req.extend_from_slice(b"\r\nmn\r\n");
        send_in_pieces(&mut c, &req, 30_000);
        match c.read_line().as_str() {
            "STORED\r\n" => {}
            "SERVER_ERROR out of memory storing object\r\n" => oom += 1,
            other => panic!("unexpected reply {other:?}"),
        }
        assert_eq!(c.read_line(), "MN\r\n");
    }
    assert!(oom > 0, "16 MB of values fit into -m 8 -M");
    let mut want = value_reply("k0", &v);
    want.extend_from_slice(b"END\r\n");
    c.roundtrip(b"get k0\r\n", &want);
    c.assert_alive("out of memory");
}
