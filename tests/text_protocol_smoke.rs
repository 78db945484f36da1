//! Golden replies for the text protocol: each request below was sent to
//! memcached 1.6.18 (`VERSION` rewritten to ours) on its own connection,
//! followed by a half-close, and its complete reply recorded. The same bytes
//! must come back from memcrab. Run with `MEMCRAB_TEST_SERVER=memcached` to
//! check the table itself against memcached.
//!
//! Cases run in order on one server: some depend on what earlier ones stored.
//! Delayed `flush_all` cases come last: memcached also hides items written in
//! the same second after one, so they would make later cases timing-dependent.
mod common;

use common::{against_memcached, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Sends `req`, half-closes, and reads the whole reply until the server closes.
fn exchange(s: &Server, req: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(req).expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    let mut out = Vec::new();
    c.read_to_end(&mut out).expect("read reply until close");
    out
}

fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).into_owned();
    if s.len() > 300 {
        format!("{}... ({} bytes)", &s[..300], s.len())
    } else {
        s
    }
}

fn version_line() -> Vec<u8> {
    if against_memcached() {
        b"VERSION 1.6.18".to_vec()
    } else {
        format!("VERSION {}", memcrab::VERSION).into_bytes()
    }
}

/// Replaces memcached's version in a recorded reply by the server's own.
fn expected(recorded: &[u8]) -> Vec<u8> {
    let ours = b"VERSION 1.6.21";
    let mut out = Vec::new();
    let mut i = 0;
    while i < recorded.len() {
        if recorded[i..].starts_with(ours) {
            out.extend_from_slice(&version_line());
            i += ours.len();
        } else {
            out.push(recorded[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn replies_match_memcached_byte_for_byte() {
    let s = Server::start(&[]);
    let mut wrong = Vec::new();
    for (req, rep) in GOLDEN {
        let got = exchange(&s, req);
        let want = expected(rep);
        if got != want {
            wrong.push(format!(
                "request {:?}\n  expected {:?}\n  got      {:?}",
                shown(req),
                shown(&want),
                shown(&got)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        GOLDEN.len(),
        wrong.join("\n")
    );
}

#[test]
fn long_lines_like_memcached() {
    let s = Server::start(&[]);
    // A 3000-byte line whose newline arrived is just an unknown command.
    let mut req = vec![b'a'; 3000];
    req.extend_from_slice(b"\r\nversion\r\n");
    let mut want = b"ERROR\r\n".to_vec();
    want.extend_from_slice(&version_line());
    want.extend_from_slice(b"\r\n");
    assert_eq!(shown(&exchange(&s, &req)), shown(&want));

    // 3000 bytes with no newline: memcached drops the connection silently.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&[b'a'; 3000]).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out); // returns once the server closes
    assert!(out.is_empty(), "{}", shown(&out));

    // A multi-get line far over 2048 bytes is read to its end and answered.
    let mut get = b"get".to_vec();
    for i in 0..2000 {
        get.extend_from_slice(format!(" key{i}").as_bytes());
    }
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&get[..6000]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(&get[6000..]).unwrap();
    c.write_all(b"\r\n").unwrap();
    let mut buf = [0u8; 16];
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"END\r\n");

    // A key over 250 bytes in a get: one error, no END.
    let mut req = b"get a ".to_vec();
    req.extend_from_slice(&[b'k'; 251]);
    req.extend_from_slice(b" a\r\n");
    assert_eq!(
        shown(&exchange(&s, &req)),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn too_large_values_are_swallowed() {
    let s = Server::start(&[]);
    let big = vec![b'x'; 2_000_000];
    let mut req = b"set a 0 0 3\r\nabc\r\nset a 0 0 2000000\r\n".to_vec();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\nget a\r\nadd b 0 0 1\r\nb\r\nadd b 0 0 2000000 noreply\r\n");
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\nget b\r\n");
    // A failed set drops the old value; a failed add leaves it; noreply is silent.
    let want = "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n\
                STORED\r\nVALUE b 0 1\r\nb\r\nEND\r\n";
    assert_eq!(shown(&exchange(&s, &req)), want);
}

#[test]
fn largest_value_is_memcacheds() {
    // At -I 1m memcached takes 1048516 bytes under key "k" (header, CAS,
    // key, "\r\n" fill the rest), 4 fewer with non-zero flags.
    let s = Server::start(&[]);
    for (flags, len, want) in [
        (0, 1_048_516, "STORED\r\n"),
        (0, 1_048_517, "SERVER_ERROR object too large for cache\r\n"),
        (5, 1_048_512, "STORED\r\n"),
        (5, 1_048_513, "SERVER_ERROR object too large for cache\r\n"),
    ] {
        let mut req = format!("set k {flags} 0 {len}\r\n").into_bytes();
        req.resize(req.len() + len, b'v');
        req.extend_from_slice(b"\r\n");
        assert_eq!(shown(&exchange(&s, &req)), want, "flags {flags} len {len}");
    }
}

#[test]
fn stats_cachedump() {
    let s = Server::start(&[]);
    let req = b"stats cachedump 1\r\nstats cachedump x 1\r\nstats cachedump 300 1\r\n";
    let want = "CLIENT_ERROR bad command line\r\nCLIENT_ERROR bad command line format\r\n\
                CLIENT_ERROR Illegal slab id\r\n";
    assert_eq!(shown(&exchange(&s, req)), want);
    if !against_memcached() {
        // memcached lists only one LRU segment (often empty right after a
        // set); memcrab lists every live item of the class.
        // The class an item lands in is the store's business: look in all.
        let mut req = b"set foo 0 0 6\r\nfooval\r\n".to_vec();
        for class in 1..=40 {
            req.extend_from_slice(format!("stats cachedump {class} 0\r\n").as_bytes());
        }
        let got = String::from_utf8_lossy(&exchange(&s, &req)).into_owned();
        assert!(got.starts_with("STORED\r\n"), "{got}");
        assert_eq!(got.matches("END\r\n").count(), 40, "{got}");
        assert_eq!(got.matches("ITEM ").count(), 1, "{got}");
        assert!(got.contains("ITEM foo [6 b; 0 s]\r\n"), "{got}");
    }
    let s = Server::start(&["-X"]);
    assert_eq!(
        shown(&exchange(&s, b"stats cachedump 1 1\r\n")),
        "CLIENT_ERROR stats cachedump not allowed\r\n"
    );
}

#[test]
fn flush_all_refused_with_dash_f() {
    let s = Server::start(&["-F"]);
    let req = b"set k 0 0 1\r\nx\r\nflush_all\r\nflush_all abc\r\nflush_all noreply\r\nget k\r\n";
    let want = "STORED\r\nCLIENT_ERROR flush_all not allowed\r\n\
                CLIENT_ERROR flush_all not allowed\r\nVALUE k 0 1\r\nx\r\nEND\r\n";
    assert_eq!(shown(&exchange(&s, req)), want);
}

#[rustfmt::skip]
const GOLDEN: &[(&[u8], &[u8])] = &[
    (b"flush_all\r\n", b"OK\r\n"),
    (b"set a 0 0 5\r\nhello\r\nget a b a\r\n", b"STORED\r\nVALUE a 0 5\r\nhello\r\nVALUE a 0 5\r\nhello\r\nEND\r\n"),
    (b"set a 4294967295 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 4294967295 1\r\nx\r\nEND\r\n"),
    (b"set a 4294967296 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    (b"set a -1 0 1\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (b"set a +5 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 5 1\r\nx\r\nEND\r\n"),
    (b"set a 0 0 -1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"set a 0 0 5\r\nhello world\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    (b"set a 0 0 5 noreply\r\nhelloXX\r\nversion\r\n", b"ERROR\r\nVERSION 1.6.21\r\n"),
    (b"set a 0 0 5 junk\r\nhello\r\n", b"STORED\r\n"),
    (b"set a 0 0\r\n", b"ERROR\r\n"),
    (b"set a 0 0 5 noreply x\r\n", b"ERROR\r\n"),
    (b"set a 0 abc 5\r\nhello\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (b"set a 0 99999999999 5\r\nhello\r\nget a\r\n", b"STORED\r\nEND\r\n"),
    (b"set a 0 0 4294967301\r\nhello\r\nget a\r\n", b"STORED\r\nVALUE a 0 5\r\nhello\r\nEND\r\n"),
    (b"set a 0 0 5\nhello\nget a\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    (b"set a 0 0 5\r\nhello\nget a\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    (b"get a\n", b"VALUE a 0 5\r\nhello\r\nEND\r\n"),
    (b"get a \r\n", b"VALUE a 0 5\r\nhello\r\nEND\r\n"),
    (b"get  a   \r\n", b"VALUE a 0 5\r\nhello\r\nEND\r\n"),
    (b"  get a\r\n", b"VALUE a 0 5\r\nhello\r\nEND\r\n"),
    (b"get a\r\r\n", b"END\r\n"),
    (b"GET a\r\n", b"ERROR\r\n"),
    (b"set kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk 0 0 1\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (b"get kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"get a kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk a\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"get kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\r\n", b"END\r\n"),
    (b"delete k 5\r\n", b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
    (b"delete k 0\r\n", b"NOT_FOUND\r\n"),
    (b"delete k noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"delete k 0 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"delete k 5 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"delete\r\n", b"ERROR\r\n"),
    (b"delete a b c d\r\n", b"ERROR\r\n"),
    (b"set d 0 0 1\r\n1\r\ndelete d\r\ndelete d\r\n", b"STORED\r\nDELETED\r\nNOT_FOUND\r\n"),
    (b"incr a abc noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"set a 0 0 -1 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"touch a abc noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"touch a abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"gat abc a\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"gat 0\r\n", b"END\r\n"),
    (b"gat\r\n", b"ERROR\r\n"),
    (b"set a 0 0 2\r\nab\r\nincr a 1\r\ndecr a 1\r\n", b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    (b"set a 0 0 3\r\n100\r\ndecr a 91\r\nget a\r\nincr a 991\r\nget a\r\n", b"STORED\r\n9\r\nVALUE a 0 3\r\n9  \r\nEND\r\n1000\r\nVALUE a 0 4\r\n1000\r\nEND\r\n"),
    (b"set a 0 0 2\r\n1 \r\nincr a 1\r\n", b"STORED\r\n2\r\n"),
    (b"set a 0 0 0\r\n\r\nincr a 1\r\n", b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    (b"set a 0 0 20\r\n18446744073709551616\r\nincr a 1\r\n", b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    (b"set a 0 0 2\r\n-1\r\nincr a 1\r\n", b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    (b"incr nope 1\r\ndecr nope 1\r\n", b"NOT_FOUND\r\nNOT_FOUND\r\n"),
    (b"set a 0 0 2\r\n10\r\nincr a 5 noreply\r\nget a\r\n", b"STORED\r\nVALUE a 0 2\r\n15\r\nEND\r\n"),
    (b"verbosity\r\n", b"ERROR\r\n"),
    (b"verbosity 1\r\n", b"OK\r\n"),
    (b"verbosity abc\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"verbosity 1 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"verbosity 1 2 3\r\n", b"ERROR\r\n"),
    (b"verbosity 0\r\n", b"OK\r\n"),
    (b"cache_memlimit 100\r\n", b"OK\r\n"),
    (b"cache_memlimit 5\r\n", b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"),
    (b"cache_memlimit abc\r\n", b"ERROR\r\n"),
    (b"cache_memlimit 2000000000\r\n", b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"),
    (b"cache_memlimit 64 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"cache_memlimit 64\r\n", b"OK\r\n"),
    (b"quit\r\n", b""),
    (b"misbehave\r\n", b"ERROR\r\n"),
    (b"version x\r\n", b"VERSION 1.6.21\r\n"),
    (b"quit x\r\n", b""),
    (b"mx\r\n", b"ERROR\r\n"),
    (b"m\r\n", b"ERROR\r\n"),
    (b"GET / HTTP/1.1\r\n", b""),
    (b"flush_all\r\n", b"OK\r\n"),
    (b"flush_all 0\r\n", b"OK\r\n"),
    (b"flush_all noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"flush_all abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"flush_all -1\r\n", b"OK\r\n"),
    (b"cas b 0 0 1 999\r\nx\r\n", b"NOT_FOUND\r\n"),
    (b"cas q 0 0 1 999\r\nx\r\n", b"NOT_FOUND\r\n"),
    (b"cas b 0 0 1\r\nx\r\n", b"ERROR\r\nERROR\r\n"),
    (b"cas b 0 0 1 abc\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (b"cas b 0 0 1 -1\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (b"set a\tb 0 0 1\r\nx\r\nget a\tb\r\n", b"STORED\r\nVALUE a\tb 0 1\r\nx\r\nEND\r\n"),
    (b"set a\x01b 0 0 1\r\nx\r\nget a\x01b\r\n", b"STORED\r\nVALUE a\x01b 0 1\r\nx\r\nEND\r\n"),
    (b"get a\x00b\r\n", b"END\r\n"),
    (b"set t 0 0 1\r\nx\r\ntouch t 10\r\ntouch zz 10\r\ntouch t 10 noreply\r\n", b"STORED\r\nTOUCHED\r\nNOT_FOUND\r\n"),
    (b"append zz 0 0 1\r\nx\r\nprepend zz 0 0 1\r\nx\r\nreplace zz 0 0 1\r\nx\r\nadd b 0 0 1\r\nx\r\nappend b 5 0 1\r\nx\r\nprepend b 5 0 1\r\ny\r\nget b\r\n", b"NOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE b 0 3\r\nyxx\r\nEND\r\n"),
    (b"set e 0 -1 1\r\nx\r\nget e\r\n", b"STORED\r\nEND\r\n"),
    (b"set e 0 0 1\r\nx\r\ntouch e -1\r\nget e\r\n", b"STORED\r\nTOUCHED\r\nEND\r\n"),
    (b"set n 0 0 1 noreply\r\nx\r\nadd n 0 0 1 noreply\r\ny\r\nget n\r\n", b"VALUE n 0 1\r\nx\r\nEND\r\n"),
    (b"\r\n", b"ERROR\r\n"),
    (b"\n", b"ERROR\r\n"),
    (b"x\r\n", b"ERROR\r\n"),
    (b" \r\n", b"ERROR\r\n"),
    (b"set a 0 0 5\r\nhel", b""),
    (b"set a 0 0 1\r\nx\r\nget a a a a a\r\nget\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\nERROR\r\n"),
    (b"get a b c d e f g h i j k l m n o p q r s t u v w x y z a\r\n", b"VALUE a 0 1\r\nx\r\nVALUE b 0 3\r\nyxx\r\nVALUE n 0 1\r\nx\r\nVALUE t 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
    (b"set f 0 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25\r\n", b"ERROR\r\n"),
    (b"incr\r\n", b"ERROR\r\n"),
    (b"decr a 1 2 3\r\n", b"ERROR\r\n"),
    (b"touch\r\n", b"ERROR\r\n"),
    (b"touch a\r\n", b"ERROR\r\n"),
    (b"flush_all 1 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"flush_all 1 2\r\n", b"OK\r\n"),
    (b"flush_all 1 2 3\r\n", b"ERROR\r\n"),
    (b"slabs automove 1\r\n", b"OK\r\n"),
    (b"slabs automove 3\r\n", b"ERROR\r\n"),
    (b"slabs automove\r\n", b"ERROR\r\n"),
    (b"slabs reassign 1\r\n", b"ERROR\r\n"),
    (b"slabs reassign a b\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"slabs reassign 1 1\r\n", b"SAME src and dst class are identical\r\n"),
    (b"slabs reassign 9999 1\r\n", b"BADCLASS invalid src or dst class id\r\n"),
    (b"slabs foo\r\n", b"ERROR\r\n"),
    (b"lru_crawler crawl 1\r\n", b"OK\r\n"),
    (b"lru_crawler crawl x\r\n", b"BADCLASS invalid class id\r\n"),
    (b"lru_crawler crawl 1,2\r\n", b"OK\r\n"),
    (b"lru_crawler crawl 1,64\r\n", b"BADCLASS invalid class id\r\n"),
    (b"lru_crawler sleep 100\r\n", b"OK\r\n"),
    (b"lru_crawler sleep 10000000\r\n", b"CLIENT_ERROR sleep must be one second or less\r\n"),
    (b"lru_crawler tocrawl 10\r\n", b"OK\r\n"),
    (b"lru_crawler tocrawl x\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    (b"lru_crawler foo\r\n", b"ERROR\r\n"),
    (b"lru_crawler\r\n", b"ERROR\r\n"),
    (b"slabs automove ratio 0.5\r\n", b"OK\r\n"),
    (b"slabs automove ratio\r\n", b"ERROR\r\n"),
    (b"slabs automove 1 noreply\r\nversion\r\n", b"VERSION 1.6.21\r\n"),
    (b"lru_crawler enable\r\n", b"ERROR failed to start lru crawler thread\r\n"),
    (b"misbehave\r\n", b"ERROR\r\n"),
    (b"stats detail\r\n", b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
    (b"stats detail x\r\n", b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
];
