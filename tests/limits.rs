//! Limits: eviction under `-m 8`, `-M` out-of-memory errors, the `-c`
//! connection limit, idle_timeout, and memory: RSS stays near `-m` plus a
//! small fixed overhead while 4x the limit is written, and a client that
//! never reads its replies cannot grow the server without bound.
//! Memory is asserted (VmRSS from /proc), never time.
mod common;

use common::{Conn, Server};
use std::time::{Duration, Instant};

/// Writes `count` values of `size` bytes as `prefix{i}`, pipelined in batches;
/// returns the replies that were not STORED.
fn fill(c: &mut Conn, prefix: &str, count: usize, size: usize) -> Vec<String> {
    let mut odd = Vec::new();
    let batch = 50;
    let mut i = 0;
    while i < count {
        let n = batch.min(count - i);
        let mut req = Vec::new();
        for j in i..i + n {
            req.extend(format!("set {prefix}{j} {j} 0 {size}\r\n").bytes());
            req.extend(value_for(j, size));
            req.extend(b"\r\n");
        }
        c.send(&req);
        for _ in 0..n {
            let l = c.read_line();
            if l != "STORED\r\n" {
                odd.push(l);
            }
        }
        i += n;
    }
    odd
}

fn value_for(j: usize, size: usize) -> Vec<u8> {
    let head = format!("{j}:");
    let mut v = head.into_bytes();
    v.resize(size, b'a' + (j % 26) as u8);
    v
}

fn num(c: &mut Conn, k: &str) -> u64 {
    c.stats("")[k].parse().unwrap()
}

#[test]
fn eviction_under_m8_keeps_recent_keys() {
    let s = Server::start(&["-m", "8"]);
    let mut c = s.connect();
    let (count, size) = (4000, 10_000); // 40 MB into an 8 MB cache
    let odd = fill(&mut c, "ev", count, size);
    assert!(
        odd.is_empty(),
        "sets failed: {:?}",
        &odd[..odd.len().min(5)]
    );
    let evictions = num(&mut c, "evictions");
    assert!(evictions > 0, "no evictions counted");
    let m = c.stats("");
    let curr: u64 = m["curr_items"].parse().unwrap();
    let bytes: u64 = m["bytes"].parse().unwrap();
    assert!(bytes <= 8 << 20, "bytes {bytes} above -m 8");
    assert!(curr < count as u64 && curr > 0, "curr_items {curr}");
    assert_eq!(
        curr + evictions,
        count as u64,
        "every item is either still there or counted as evicted"
    );
    // The most recent writes survive, intact.
    for j in count - 100..count {
        let got = c.get(&format!("ev{j}"));
        let (flags, v) = got.unwrap_or_else(|| panic!("recent key ev{j} evicted"));
        assert_eq!(flags as usize, j);
        assert!(v == value_for(j, size), "ev{j} corrupted");
    }
    // The oldest are gone.
    assert!(c.get("ev0").is_none(), "oldest key survived 5x overfill");
    // And the server still takes writes and answers.
    assert!(fill(&mut c, "after", 10, 100).is_empty());
    c.roundtrip(b"version\r\n", b"VERSION 1.6");
}

#[test]
fn dash_big_m_returns_out_of_memory_instead_of_evicting() {
    let s = Server::start(&["-m", "8", "-M"]);
    let mut c = s.connect();
    let odd = fill(&mut c, "oom", 2000, 10_000);
    assert!(!odd.is_empty(), "20 MB fit into -m 8 -M");
    assert!(
        odd.iter()
            .all(|l| l == "SERVER_ERROR out of memory storing object\r\n"),
        "{:?}",
        &odd[..odd.len().min(3)]
    );
    assert_eq!(num(&mut c, "evictions"), 0);
    // What was stored first is still there.
    let (_, v) = c.get("oom0").expect("first key lost under -M");
    assert!(v == value_for(0, 10_000));
    c.roundtrip(b"delete oom0\r\n", b"DELETED\r\n");
    c.roundtrip(b"version\r\n", b"VERSION 1.6");
}

#[test]
fn connection_limit_rejects_with_error() {
    let s = Server::start(&["-c", "50"]);
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for _ in 0..60 {
        let mut c = s.connect();
        c.send(b"version\r\n");
        let l = c.read_line();
        if l.starts_with("VERSION ") {
            accepted.push(c);
        } else {
            assert_eq!(l, "ERROR Too many open connections\r\n");
            assert!(c.is_closed(), "rejected connection left open");
            rejected += 1;
        }
    }
    assert!(rejected >= 10, "only {rejected} of 60 rejected with -c 50");
    // memcached reserves some of -c for itself (it accepts 25 of 50 here).
    assert!(accepted.len() >= 20, "accepted only {}", accepted.len());
    let mut first = accepted.remove(0);
    assert!(num(&mut first, "rejected_connections") >= 1);
    drop(accepted);
    // Freed slots are usable again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = s.connect();
        c.send(b"version\r\n");
        if c.read_line().starts_with("VERSION ") {
            break;
        }
        assert!(Instant::now() < deadline, "slots not freed after close");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_connections_are_closed_after_idle_timeout() {
    let s = Server::start(&["-o", "idle_timeout=2"]);
    let mut idle = s.connect();
    idle.roundtrip(b"version\r\n", b"VERSION 1.6");
    idle.read_line();
    let mut busy = s.connect();
    let start = Instant::now();
    let mut closed_after = None;
    while start.elapsed() < Duration::from_secs(12) {
        busy.roundtrip(b"version\r\n", b"VERSION 1.6");
        busy.read_line();
        idle.stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 16];
        match std::io::Read::read(&mut idle.stream, &mut b) {
            Ok(0) => {
                closed_after = Some(start.elapsed());
                break;
            }
            Ok(_) => panic!("unexpected data on idle connection"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed_after = Some(start.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let after = closed_after.expect("idle connection never closed");
    assert!(
        after >= Duration::from_secs(1),
        "closed too early: {after:?}"
    );
    // The busy connection stays.
    busy.roundtrip(b"version\r\n", b"VERSION 1.6");
}

/// Log-uniform sizes 50 B .. 4 KB plus some 100 KB values, fixed seed.
fn mixed_size(i: u64) -> usize {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
    x ^= x >> 29;
    let r = (x % 10_000) as f64 / 10_000.0;
    if i.is_multiple_of(97) {
        100_000
    } else {
        (50.0 * (4096.0f64 / 50.0).powf(r)) as usize
    }
}

#[test]
fn rss_stays_near_memory_limit_while_4x_is_written() {
    let limit_mb = 32u64;
    let s = Server::start(&["-m", &limit_mb.to_string()]);
    let mut c = s.connect();
    let base = s.rss_kib();
    let target = 4 * (limit_mb << 20);
    let mut written = 0u64;
    let mut i = 0u64;
    let mut peak = 0;
    while written < target {
        let mut req = Vec::new();
        let mut n = 0;
        while n < 100 {
            let size = mixed_size(i);
            req.extend(format!("set m{i} 0 0 {size}\r\n").bytes());
            req.resize(req.len() + size, b'r');
            req.extend(b"\r\n");
            written += size as u64;
            i += 1;
            n += 1;
        }
        c.send(&req);
        for _ in 0..n {
            let l = c.read_line();
            assert_eq!(l, "STORED\r\n", "set m{i}");
        }
        peak = peak.max(s.rss_kib());
    }
    let m = c.stats("");
    assert!(m["evictions"].parse::<u64>().unwrap() > 0);
    // -m plus a small fixed overhead: 16 MB covers the hash table, thread
    // stacks, connection buffers and code (memcached 1.6.18 peaks ~6 MB over).
    let bound_kib = (limit_mb + 16) * 1024;
    eprintln!("rss: base {base} KiB, peak {peak} KiB, bound {bound_kib} KiB, items written {i}");
    assert!(
        peak <= bound_kib,
        "peak RSS {peak} KiB above -m {limit_mb} MB + 16 MB"
    );
}

#[test]
fn client_that_never_reads_cannot_grow_the_server() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.connect();
    let mut req = b"set fat 0 0 500000\r\n".to_vec();
    req.resize(req.len() + 500_000, b'f');
    req.extend(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    let before = s.rss_kib();
    // Ask for up to 100 GB of replies and never read them.
    let mut hog = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let burst = b"get fat\r\n".repeat(2000);
    let mut sent = 0;
    for _ in 0..100 {
        if std::io::Write::write_all(&mut hog, &burst).is_err() {
            break; // the server stopped reading: the point of the test
        }
        sent += 2000;
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = s.rss_kib();
    eprintln!("never-reading client: sent {sent} gets of 500 KB; rss {before} -> {after} KiB");
    assert!(
        after < before + 100 * 1024,
        "RSS grew from {before} to {after} KiB for a client that does not read"
    );
    // Others are still served.
    let mut other = s.connect();
    other.roundtrip(b"version\r\n", b"VERSION 1.6");
    drop(hog);
}
