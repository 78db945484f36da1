//! Many clients at once: 8 threads x 2,000 mixed operations, each thread
//! owning its keys and checking every reply against its own model, plus
//! shared counters and CAS loops that must not lose an update, and CAS
//! uniques that stay unique across the whole server.
mod common;

use common::{Conn, Server};
use std::collections::{HashMap, HashSet};

const THREADS: usize = 8;
const OPS: usize = 2_000;

/// xorshift64*: deterministic, dependency-free randomness per thread.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A value that names its owner and version, so a stray or torn value is caught.
fn make_value(t: usize, key: usize, version: usize, len: usize) -> Vec<u8> {
    let head = format!("t{t}k{key}v{version}:");
    let mut v = head.into_bytes();
    let mut i = 0u8;
    while v.len() < len {
        v.push(b'a' + (i % 26));
        i = i.wrapping_add(7);
    }
    v
}

fn expect_get(c: &mut Conn, key: &str, want: &Option<(u32, Vec<u8>)>, op: usize) {
    let got = c.get(key);
    assert!(
        &got == want,
        "op {op}: get {key}: got {:?} want {:?}",
        got.as_ref().map(|(f, v)| (
            f,
            String::from_utf8_lossy(&v[..v.len().min(40)]).to_string()
        )),
        want.as_ref().map(|(f, v)| (
            f,
            String::from_utf8_lossy(&v[..v.len().min(40)]).to_string()
        ))
    );
}

fn worker(port: u16, t: usize) {
    let mut c = Conn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678));
    let mut model: HashMap<usize, (u32, Vec<u8>)> = HashMap::new();
    let nkeys = 64;
    for op in 0..OPS {
        let k = rng.below(nkeys) as usize;
        let key = format!("own{t}_{k}");
        let cur = model.get(&k).cloned();
        match rng.below(10) {
            0..=2 => {
                let max = if rng.below(10) == 0 { 20_000 } else { 300 };
                let len = 1 + rng.below(max) as usize;
                let v = make_value(t, k, op, len);
                let flags = rng.below(1 << 16) as u32;
                let mut req = format!("set {key} {flags} 0 {}\r\n", v.len()).into_bytes();
                req.extend(&v);
                req.extend(b"\r\n");
                c.roundtrip(&req, b"STORED\r\n");
                model.insert(k, (flags, v));
            }
            3..=5 => expect_get(&mut c, &key, &cur, op),
            6 => {
                let reply: &[u8] = if cur.is_some() {
                    b"DELETED\r\n"
                } else {
                    b"NOT_FOUND\r\n"
                };
                c.roundtrip(format!("delete {key}\r\n").as_bytes(), reply);
                model.remove(&k);
            }
            7 => {
                let add = format!("-{op}");
                let reply: &[u8] = if cur.is_some() {
                    b"STORED\r\n"
                } else {
                    b"NOT_STORED\r\n"
                };
                let mut req = format!("append {key} 0 0 {}\r\n{add}\r\n", add.len()).into_bytes();
                if rng.below(2) == 0 {
                    req = format!("prepend {key} 0 0 {}\r\n{add}\r\n", add.len()).into_bytes();
                    c.roundtrip(&req, reply);
                    if let Some((f, v)) = cur {
                        let mut nv = add.into_bytes();
                        nv.extend(v);
                        model.insert(k, (f, nv));
                    }
                } else {
                    c.roundtrip(&req, reply);
                    if let Some((f, mut v)) = cur {
                        v.extend(add.bytes());
                        model.insert(k, (f, v));
                    }
                }
            }
            8 => {
                // add / replace depend on presence.
                let v = make_value(t, k, op, 20);
                if rng.below(2) == 0 {
                    let mut req = format!("add {key} 1 0 {}\r\n", v.len()).into_bytes();
                    req.extend(&v);
                    req.extend(b"\r\n");
                    if cur.is_some() {
                        c.roundtrip(&req, b"NOT_STORED\r\n");
                    } else {
                        c.roundtrip(&req, b"STORED\r\n");
                        model.insert(k, (1, v));
                    }
                } else {
                    let mut req = format!("replace {key} 2 0 {}\r\n", v.len()).into_bytes();
                    req.extend(&v);
                    req.extend(b"\r\n");
                    if cur.is_some() {
                        c.roundtrip(&req, b"STORED\r\n");
                        model.insert(k, (2, v));
                    } else {
                        c.roundtrip(&req, b"NOT_STORED\r\n");
                    }
                }
            }
            _ => {
                // A numeric counter per thread.
                let ckey = format!("cnt{t}");
                let n = model.get(&1_000_000).map(|(_, v)| {
                    String::from_utf8(v.clone())
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                });
                match n {
                    None => {
                        c.roundtrip(
                            format!("set {ckey} 0 0 1\r\n0\r\n").as_bytes(),
                            b"STORED\r\n",
                        );
                        model.insert(1_000_000, (0, b"0".to_vec()));
                    }
                    Some(n) => {
                        let d = rng.below(1000);
                        c.roundtrip(
                            format!("incr {ckey} {d}\r\n").as_bytes(),
                            format!("{}\r\n", n + d).as_bytes(),
                        );
                        model.insert(1_000_000, (0, (n + d).to_string().into_bytes()));
                    }
                }
            }
        }
    }
    // Final sweep: every key holds exactly what this thread last wrote.
    for k in 0..nkeys as usize {
        expect_get(&mut c, &format!("own{t}_{k}"), &model.get(&k).cloned(), OPS);
    }
}

#[test]
fn eight_threads_mixed_ops_lose_nothing() {
    let s = Server::start(&["-t", "4", "-m", "256"]);
    let port = s.port;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| std::thread::spawn(move || worker(port, t)))
        .collect();
    for h in handles {
        h.join().expect("worker thread failed");
    }
    let mut c = s.connect();
    assert_eq!(c.stats("")["evictions"], "0");
}

#[test]
fn shared_counter_and_cas_loops_lose_no_update() {
    let s = Server::start(&["-t", "4"]);
    let mut c = s.connect();
    c.roundtrip(b"set shared 0 0 1\r\n0\r\n", b"STORED\r\n");
    c.roundtrip(b"set casnum 0 0 1\r\n0\r\n", b"STORED\r\n");
    let port = s.port;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Conn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                for _ in 0..500 {
                    c.send(b"incr shared 1\r\n");
                    c.read_line();
                }
                // Optimistic increments with gets/cas: retry on EXISTS.
                let mut done = 0;
                let mut tries = 0;
                while done < 100 {
                    tries += 1;
                    assert!(tries < 100_000, "cas loop does not make progress");
                    c.send(b"gets casnum\r\n");
                    let head = c.read_line();
                    let p: Vec<&str> = head.split_whitespace().collect();
                    let len: usize = p[3].parse().unwrap();
                    let unique: u64 = p[4].parse().unwrap();
                    let v = c.read_exact(len + 2);
                    c.read_line();
                    let n: u64 = String::from_utf8_lossy(&v[..len]).trim().parse().unwrap();
                    let nv = (n + 1).to_string();
                    c.send(format!("cas casnum 0 0 {} {unique}\r\n{nv}\r\n", nv.len()).as_bytes());
                    match c.read_line().as_str() {
                        "STORED\r\n" => done += 1,
                        "EXISTS\r\n" => {}
                        other => panic!("cas reply {other:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread failed");
    }
    assert_eq!(c.get_counter("shared"), Some((THREADS * 500) as u64));
    assert_eq!(c.get_counter("casnum"), Some((THREADS * 100) as u64));
}

#[test]
fn cas_uniques_unique_across_threads() {
    let s = Server::start(&["-t", "4"]);
    let port = s.port;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let mut uniques = Vec::new();
                for i in 0..300 {
                    let key = format!("u{t}_{}", i % 20);
                    c.roundtrip(
                        format!("set {key} 0 0 1\r\nx\r\n").as_bytes(),
                        b"STORED\r\n",
                    );
                    c.send(format!("gets {key}\r\n").as_bytes());
                    let head = c.read_line();
                    uniques.push(
                        head.split_whitespace()
                            .nth(4)
                            .unwrap()
                            .parse::<u64>()
                            .unwrap(),
                    );
                    c.read_line();
                    c.read_line();
                }
                uniques
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for u in h.join().unwrap() {
            assert!(u != 0, "cas unique 0");
            assert!(all.insert(u), "cas unique {u} handed out twice");
        }
    }
    assert_eq!(all.len(), THREADS * 300);
}

#[test]
fn readers_never_see_torn_values_of_shared_keys() {
    // Writers overwrite shared keys with self-describing values; readers
    // check every value they see is one complete written value.
    let s = Server::start(&["-t", "4"]);
    let port = s.port;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let mut rng = Rng(t as u64 * 7919 + 13);
                for op in 0..1000 {
                    let k = rng.below(8);
                    let key = format!("shared{k}");
                    if t % 2 == 0 {
                        let fill = b'A' + (rng.below(26) as u8);
                        let len = 1 + rng.below(30_000) as usize;
                        let mut v = format!("{len}:{}:", fill as char).into_bytes();
                        v.extend(std::iter::repeat_n(fill, len));
                        let mut req = format!("set {key} 0 0 {}\r\n", v.len()).into_bytes();
                        req.extend(&v);
                        req.extend(b"\r\n");
                        c.roundtrip(&req, b"STORED\r\n");
                    } else if let Some((_, v)) = c.get(&key) {
                        let s = String::from_utf8_lossy(&v);
                        let mut parts = s.splitn(3, ':');
                        let len: usize = parts.next().unwrap().parse().unwrap_or_else(|_| {
                            panic!("op {op}: torn value header {:?}", &s[..s.len().min(40)])
                        });
                        let fill = parts.next().unwrap().as_bytes()[0];
                        let body = parts.next().unwrap().as_bytes();
                        assert_eq!(body.len(), len, "op {op}: torn value length");
                        assert!(body.iter().all(|&b| b == fill), "op {op}: mixed value");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread failed");
    }
}
