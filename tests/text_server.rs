//! Connection-level behaviour over real sockets: pipelining, byte-at-a-time
//! writes, many clients at once, `shutdown` with -A, signals, and a client
//! that never reads its replies. Checked against memcached 1.6.18.
mod common;

use common::Server;
use std::io::Write;
use std::time::Duration;

#[test]
fn thousand_pipelined_commands_in_one_write() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let mut req = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let key = format!("p{}", i % 97);
        match i % 5 {
            0 => {
                let v = format!("value-{i}");
                req.extend(format!("set {key} {i} 0 {}\r\n{v}\r\n", v.len()).bytes());
                expected.extend(b"STORED\r\n");
            }
            1 => {
                // The previous command set this key.
                let prev = format!("p{}", (i - 1) % 97);
                let v = format!("value-{}", i - 1);
                req.extend(format!("get {prev}\r\n").bytes());
                expected.extend(
                    format!("VALUE {prev} {} {}\r\n{v}\r\nEND\r\n", i - 1, v.len()).bytes(),
                );
            }
            2 => {
                req.extend(format!("delete nothing{i}\r\n").bytes());
                expected.extend(b"NOT_FOUND\r\n");
            }
            3 => {
                req.extend(b"incr counter 1\r\n");
                if i == 3 {
                    expected.extend(b"NOT_FOUND\r\n");
                } else {
                    expected.extend(format!("{}\r\n", i / 5).bytes());
                }
                if i == 3 {
                    req.extend(b"set counter 0 0 1\r\n0\r\n");
                    expected.extend(b"STORED\r\n");
                }
            }
            _ => {
                req.extend(b"verbosity 0\r\n");
                expected.extend(b"OK\r\n");
            }
        }
    }
    c.send(&req);
    let got = c.read_exact(expected.len());
    if got != expected {
        let pos = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let from = pos.saturating_sub(80);
        panic!(
            "pipelined replies differ at byte {pos}:\n got {:?}\nwant {:?}",
            String::from_utf8_lossy(&got[from..(pos + 80).min(got.len())]),
            String::from_utf8_lossy(&expected[from..(pos + 80).min(expected.len())])
        );
    }
    c.roundtrip(b"get counter\r\n", b"VALUE counter 0 3\r\n199\r\nEND\r\n");
}

#[test]
fn pipelined_gets_with_large_values_come_back_in_order() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let mut req = Vec::new();
    for i in 0..200 {
        let v = vec![b'a' + (i % 26) as u8; 10_000 + i];
        req.extend(format!("set big{i} 0 0 {}\r\n", v.len()).bytes());
        req.extend(&v);
        req.extend(b"\r\n");
    }
    c.send(&req);
    for _ in 0..200 {
        assert_eq!(c.read_line(), "STORED\r\n");
    }
    let mut req = Vec::new();
    for i in 0..200 {
        req.extend(format!("get big{i}\r\n").bytes());
    }
    c.send(&req);
    for i in 0..200 {
        assert_eq!(c.read_line(), format!("VALUE big{i} 0 {}\r\n", 10_000 + i));
        let v = c.read_exact(10_000 + i + 2);
        assert!(v[..10_000 + i].iter().all(|&b| b == b'a' + (i % 26) as u8));
        assert_eq!(c.read_line(), "END\r\n");
    }
}

#[test]
fn byte_at_a_time_writes() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let req: &[u8] = b"set slow 3 0 10\r\nhello\r\nyou\r\nget slow\r\nincr n 1\r\nversion\r\n";
    for b in req {
        c.stream.write_all(&[*b]).unwrap();
        c.stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.read_line(), "STORED\r\n");
    assert_eq!(c.read_line(), "VALUE slow 3 10\r\n");
    assert_eq!(c.read_exact(12), b"hello\r\nyou\r\n");
    assert_eq!(c.read_line(), "END\r\n");
    assert_eq!(c.read_line(), "NOT_FOUND\r\n");
    assert!(c.read_line().starts_with("VERSION 1.6"));
}

#[test]
fn commands_split_at_every_offset() {
    // Every split point of a request in two writes gives the same replies.
    let s = Server::start(&[]);
    let mut c = s.connect();
    let req: &[u8] = b"set k 1 0 4\r\nab\r\n\r\ngets k\r\ndelete k\r\n";
    for cut in 1..req.len() {
        c.send(&req[..cut]);
        std::thread::sleep(Duration::from_millis(3));
        c.send(&req[cut..]);
        assert_eq!(c.read_line(), "STORED\r\n", "cut at {cut}");
        let head = c.read_line();
        assert!(head.starts_with("VALUE k 1 4 "), "cut at {cut}: {head:?}");
        assert_eq!(c.read_exact(6), b"ab\r\n\r\n");
        assert_eq!(c.read_line(), "END\r\n");
        assert_eq!(c.read_line(), "DELETED\r\n");
    }
}

#[test]
fn many_clients_at_once_see_each_others_writes() {
    let s = Server::start(&["-t", "4"]);
    let mut conns: Vec<_> = (0..50).map(|_| s.connect()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.roundtrip(
            format!("set c{i} 0 0 1\r\n{}\r\n", i % 10).as_bytes(),
            b"STORED\r\n",
        );
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let j = (i + 17) % 50;
        c.roundtrip(
            format!("get c{j}\r\n").as_bytes(),
            format!("VALUE c{j} 0 1\r\n{}\r\nEND\r\n", j % 10).as_bytes(),
        );
    }
}

#[test]
fn client_that_never_reads_does_not_stop_others() {
    // A client floods gets without reading; the server must keep serving
    // other clients (and not grow without bound, see limits.rs).
    let s = Server::start(&[]);
    let mut c = s.connect();
    let mut v = b"set fat 0 0 100000\r\n".to_vec();
    v.extend(vec![b'f'; 100_000]);
    v.extend(b"\r\n");
    c.roundtrip(&v, b"STORED\r\n");
    let mut hog = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let burst = b"get fat\r\n".repeat(1000);
    for _ in 0..50 {
        if hog.write_all(&burst).is_err() {
            break; // the server stopped reading us: that is the point
        }
    }
    let mut other = s.connect();
    other.roundtrip(b"set x 0 0 1\r\nx\r\n", b"STORED\r\n");
    other.roundtrip(b"get x\r\n", b"VALUE x 0 1\r\nx\r\nEND\r\n");
    drop(hog);
    other.roundtrip(b"delete x\r\n", b"DELETED\r\n");
}

#[test]
fn shutdown_with_dash_a_exits() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.connect();
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.send(b"shutdown\r\n");
    assert!(c.is_closed(), "connection stays open after shutdown");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "exit code");
}

#[test]
fn sigterm_exits_cleanly() {
    let mut s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "exit code");
    assert!(c.is_closed());
}

#[test]
fn sigint_exits_cleanly() {
    let mut s = Server::start(&[]);
    let mut c = s.connect();
    c.roundtrip(b"version\r\n", b"VERSION 1.6");
    s.signal("INT");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "exit code");
}
