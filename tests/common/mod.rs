//! Test harness: starts a real server process on a free 127.0.0.1 port and
//! talks to it over real sockets. Set `MEMCRAB_TEST_SERVER=memcached` to run
//! the same tests against memcached 1.6 and check the expectations themselves.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The `pid` the server on the other end of `s` reports in `stats`, if it
/// answers within 2 s.
fn listener_pid(mut s: TcpStream) -> Option<u32> {
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"stats\r\n").ok()?;
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    while !got.ends_with(b"END\r\n") {
        let n = s.read(&mut tmp).ok()?;
        if n == 0 || got.len() > 1 << 20 {
            return None;
        }
        got.extend_from_slice(&tmp[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    text.lines()
        .find_map(|l| l.strip_prefix("STAT pid "))
        .and_then(|v| v.trim().parse().ok())
}

/// True when the tests target real memcached instead of memcrab.
pub fn against_memcached() -> bool {
    std::env::var("MEMCRAB_TEST_SERVER")
        .map(|v| v == "memcached")
        .unwrap_or(false)
}

impl Server {
    /// Starts the server with `-p <free> -l 127.0.0.1 -U 0` plus `args`.
    pub fn start(args: &[&str]) -> Server {
        for _attempt in 0..5 {
            let port = free_port();
            let bin = if against_memcached() {
                "/usr/bin/memcached".to_string()
            } else {
                env!("CARGO_BIN_EXE_memcrab").to_string()
            };
            let mut cmd = Command::new(bin);
            cmd.args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0"])
                .args(args);
            if against_memcached() {
                cmd.args(["-u", "root"]);
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(if std::env::var_os("MEMCRAB_TEST_STDERR").is_some() {
                    Stdio::inherit() // debugging: see the server's own messages
                } else {
                    Stdio::null()
                })
                .spawn()
                .expect("spawn server");
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut unverified_since: Option<Instant> = None;
            while Instant::now() < deadline {
                if let Ok(probe) = TcpStream::connect(("127.0.0.1", port)) {
                    // Another test's server may already own this port (two
                    // tests picked the same free port): make sure the one
                    // answering is our child before handing it out.
                    match listener_pid(probe) {
                        Some(pid) if pid == child.id() => return Server { port, child },
                        Some(_) => break, // not ours: retry with another port
                        None => {
                            // No pid (a server refusing the probe, e.g. a tiny
                            // -c): accept it once ours has stayed up a second.
                            let since = *unverified_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(1) {
                                if let Ok(None) = child.try_wait() {
                                    return Server { port, child };
                                }
                            }
                        }
                    }
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken or bad args: retry with another port
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("server did not start with args {args:?}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> Conn {
        Conn::new(TcpStream::connect(("127.0.0.1", self.port)).expect("connect"))
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal to the server (only ever our own child).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status();
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client connection with a read buffer and a 10 s read timeout.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).ok();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends what the server takes before it closes the connection: for
    /// input the server is expected to reject by closing (a write error
    /// then means it already did; `is_closed` checks).
    pub fn send_until_closed(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads exactly `n` bytes (panics on EOF/timeout).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill(),
                "connection closed or timed out; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one line including its "\r\n".
    pub fn read_line(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=p).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            assert!(
                self.fill(),
                "connection closed or timed out; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Sends `req` and asserts the reply is exactly `expected`.
    pub fn roundtrip(&mut self, req: &[u8], expected: &[u8]) {
        self.send(req);
        let got = self.read_exact(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "request {:?}",
            String::from_utf8_lossy(&req[..req.len().min(300)])
        );
    }

    /// True when the server closed the connection (EOF) within the timeout.
    pub fn is_closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .ok();
        let mut tmp = [0u8; 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    }

    /// `stats` as name -> value.
    pub fn stats(&mut self, group: &str) -> std::collections::HashMap<String, String> {
        let cmd = if group.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {group}\r\n")
        };
        self.send(cmd.as_bytes());
        let mut m = std::collections::HashMap::new();
        loop {
            let l = self.read_line();
            let l = l.trim_end();
            if l == "END" {
                return m;
            }
            let mut it = l.splitn(3, ' ');
            let _stat = it.next();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }

    /// `stats <group>`, polled every 20 ms until `done` holds for it or
    /// `timeout` passes; returns the last answer either way (for the
    /// caller's asserts), for counters the server updates in the background.
    pub fn stats_when(
        &mut self,
        group: &str,
        timeout: Duration,
        done: impl Fn(&std::collections::HashMap<String, String>) -> bool,
    ) -> std::collections::HashMap<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.stats(group);
            if done(&st) || Instant::now() > deadline {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `get <key>`: `Some((flags, value))` on a hit, `None` on a miss.
    pub fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        self.send(format!("get {key}\r\n").as_bytes());
        let head = self.read_line();
        if head == "END\r\n" {
            return None;
        }
        let parts: Vec<&str> = head.split_whitespace().collect();
        assert!(
            parts.len() == 4 && parts[0] == "VALUE" && parts[1] == key,
            "bad get reply {head:?}"
        );
        let flags: u32 = parts[2].parse().expect("flags");
        let len: usize = parts[3].parse().expect("length");
        let mut value = self.read_exact(len + 2);
        assert_eq!(&value[len..], b"\r\n", "value not ended by CRLF");
        value.truncate(len);
        assert_eq!(self.read_line(), "END\r\n");
        Some((flags, value))
    }

    /// Reads a counter written by incr/decr. memcached may keep the old
    /// length padded with spaces when a number shrinks (protocol.txt allows
    /// it), so trailing spaces are ignored.
    pub fn get_counter(&mut self, key: &str) -> Option<u64> {
        self.get(key).map(|(_, v)| {
            let s = String::from_utf8(v).expect("utf8 counter");
            s.trim_end_matches(' ').parse().expect("numeric counter")
        })
    }
}

impl Conn {
    /// Asserts the connection still answers: `version` gives `VERSION …`.
    pub fn assert_alive(&mut self, after: &str) {
        self.send(b"version\r\n");
        let line = self.read_line();
        assert!(
            line.starts_with("VERSION "),
            "after {after}: expected VERSION, got {line:?}"
        );
    }

    /// Reads whatever arrives until `quiet` passes without data or EOF.
    pub fn read_available(&mut self, quiet: Duration) -> Vec<u8> {
        self.stream.set_read_timeout(Some(quiet)).ok();
        while self.fill() {}
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok();
        std::mem::take(&mut self.buf)
    }
}

/// A value of `len` bytes that differs per key and per position, so a
/// swapped, shifted or cut value shows.
pub fn value_for(key: &str, len: usize) -> Vec<u8> {
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

/// Pipelined sets of the keys `{prefix}{i}` for `i` in `range`, values of
/// `size` bytes, each answered STORED.
pub fn set_many(c: &mut Conn, prefix: &str, range: std::ops::Range<usize>, size: usize) {
    let value = vec![b'v'; size];
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(100) {
        let mut req = Vec::new();
        for i in chunk {
            req.extend_from_slice(format!("set {prefix}{i} 0 0 {size}\r\n").as_bytes());
            req.extend_from_slice(&value);
            req.extend_from_slice(b"\r\n");
        }
        c.send(&req);
        for _ in chunk {
            assert_eq!(c.read_line(), "STORED\r\n");
        }
    }
}

/// Appends `set {key} 0 0 <len>` and its data block to `req`.
pub fn set_req(req: &mut Vec<u8>, key: &str, v: &[u8]) {
    req.extend_from_slice(format!("set {key} 0 0 {}\r\n", v.len()).as_bytes());
    req.extend_from_slice(v);
    req.extend_from_slice(b"\r\n");
}

/// The `VALUE` block a get returns for `key` with flags 0 and value `v`.
pub fn value_reply(key: &str, v: &[u8]) -> Vec<u8> {
    let mut r = format!("VALUE {key} 0 {}\r\n", v.len()).into_bytes();
    r.extend_from_slice(v);
    r.extend_from_slice(b"\r\n");
    r
}
