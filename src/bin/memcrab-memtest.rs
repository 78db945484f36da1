//! memcrab-memtest: the client side of `scripts/memory-vs-memcached.sh`.
//! Drives one memcached-protocol server (memcrab or memcached) with a
//! deterministic workload and prints `name=value` lines.
//!
//! Phases (each against a freshly started server):
//! * `fill`  — values log-uniform 50 B–4 KB (fixed seed) until 4× the limit
//!   is written, then reads every key back: items retained, bytes, evictions.
//! * `zipf`  — zipf(0.99) get-or-set-on-miss over a key space 5× what fits;
//!   prints the hit ratio of the second half of the run.
//! * `shift` — fill with 100 B values, then write 10 KB values worth twice
//!   the limit over `--seconds`; prints how much of the newest quarter of
//!   the 10 KB items reads back.
//!
//! Every phase also samples the server's RSS (from /proc/<pid>) and prints
//! the peak. Usage: `memcrab-memtest <phase> <port> <pid> <limit_mb> [seconds]`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Value size of key `i`: log-uniform in [50, 4096], fixed per key.
fn size_of_key(i: u64) -> usize {
    let mut r = Rng(i ^ 0x5EED_5EED);
    let u = r.unit();
    (50f64 * (4096f64 / 50f64).powf(u)) as usize
}

fn key(i: u64) -> String {
    format!("key:{i:09}")
}

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    pid: u32,
    peak_rss_kib: u64,
    last_sample: Instant,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Client {
    fn new(port: u16, pid: u32) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Client {
            s,
            buf: Vec::new(),
            pos: 0,
            pid,
            peak_rss_kib: 0,
            last_sample: Instant::now(),
        }
    }

    fn sample(&mut self) {
        if self.last_sample.elapsed() > Duration::from_millis(100) {
            self.last_sample = Instant::now();
            self.peak_rss_kib = self.peak_rss_kib.max(rss_kib(self.pid));
        }
    }

    fn fill(&mut self) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut tmp = [0u8; 65536];
        let n = self.s.read(&mut tmp).expect("read");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&tmp[..n]);
    }

    fn line(&mut self) -> Vec<u8> {
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let l = self.buf[self.pos..self.pos + p + 1].to_vec();
                self.pos += p + 1;
                return l;
            }
            self.fill();
        }
    }

    fn skip(&mut self, mut n: usize) {
        loop {
            let have = self.buf.len() - self.pos;
            if have >= n {
                self.pos += n;
                return;
            }
            n -= have;
            self.pos = self.buf.len();
            self.fill();
        }
    }

    /// Sets every (key, size) in one pipelined batch; returns how many stored.
    fn set_batch(&mut self, items: &[(u64, usize)], payload: &[u8]) -> usize {
        let mut out = Vec::new();
        for &(k, sz) in items {
            out.extend_from_slice(format!("set {} 0 0 {}\r\n", key(k), sz).as_bytes());
            out.extend_from_slice(&payload[..sz]);
            out.extend_from_slice(b"\r\n");
        }
        self.s.write_all(&out).expect("write");
        let mut stored = 0;
        for _ in items {
            if self.line().starts_with(b"STORED") {
                stored += 1;
            }
        }
        self.sample();
        stored
    }

    /// Multi-get; returns which keys hit.
    fn get_batch(&mut self, keys: &[u64]) -> Vec<bool> {
        let mut cmd = b"get".to_vec();
        for &k in keys {
            cmd.push(b' ');
            cmd.extend_from_slice(key(k).as_bytes());
        }
        cmd.extend_from_slice(b"\r\n");
        self.s.write_all(&cmd).expect("write");
        let mut hit = vec![false; keys.len()];
        let mut idx = std::collections::HashMap::new();
        for (i, &k) in keys.iter().enumerate() {
            idx.insert(key(k), i);
        }
        loop {
            let l = self.line();
            if l.starts_with(b"END") {
                break;
            }
            let text = String::from_utf8_lossy(&l).into_owned();
            let mut it = text.split_whitespace();
            assert_eq!(it.next(), Some("VALUE"), "unexpected reply {text:?}");
            let k = it.next().unwrap_or_default().to_string();
            let len: usize = it.nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            self.skip(len + 2);
            if let Some(&i) = idx.get(&k) {
                hit[i] = true;
            }
        }
        self.sample();
        hit
    }

    fn stats(&mut self) -> std::collections::HashMap<String, String> {
        self.s.write_all(b"stats\r\n").expect("write");
        let mut m = std::collections::HashMap::new();
        loop {
            let l = String::from_utf8_lossy(&self.line()).trim_end().to_string();
            if l == "END" {
                return m;
            }
            let mut it = l.splitn(3, ' ');
            it.next();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }

    fn report(&mut self) {
        self.peak_rss_kib = self.peak_rss_kib.max(rss_kib(self.pid));
        let st = self.stats();
        for k in ["bytes", "curr_items", "evictions", "slabs_moved"] {
            println!("{k}={}", st.get(k).map(String::as_str).unwrap_or("0"));
        }
        println!("rss_mb={:.1}", rss_kib(self.pid) as f64 / 1024.0);
        println!("peak_rss_mb={:.1}", self.peak_rss_kib as f64 / 1024.0);
    }
}

const BATCH: usize = 100;

fn phase_fill(c: &mut Client, limit: u64) {
    let payload = vec![b'v'; 8192];
    let mut written = 0u64;
    let mut n = 0u64;
    while written < 4 * limit {
        let items: Vec<(u64, usize)> = (n..n + BATCH as u64).map(|i| (i, size_of_key(i))).collect();
        written += items.iter().map(|x| x.1 as u64).sum::<u64>();
        c.set_batch(&items, &payload);
        n += BATCH as u64;
    }
    let mut retained = 0u64;
    let mut retained_bytes = 0u64;
    let mut i = 0;
    while i < n {
        let keys: Vec<u64> = (i..(i + BATCH as u64).min(n)).collect();
        for (k, h) in keys.iter().zip(c.get_batch(&keys)) {
            if h {
                retained += 1;
                retained_bytes += size_of_key(*k) as u64;
            }
        }
        i += BATCH as u64;
    }
    println!("written={n}");
    println!("retained={retained}");
    println!(
        "retained_value_mb={:.1}",
        retained_bytes as f64 / (1 << 20) as f64
    );
    c.report();
}

fn phase_zipf(c: &mut Client, limit: u64, ops: u64) {
    // Mean log-uniform size is (4096-50)/ln(4096/50) ≈ 918 B.
    let fits = limit / 918;
    let space = (5 * fits) as usize;
    let theta = 0.99;
    let mut cdf = Vec::with_capacity(space);
    let mut acc = 0.0;
    for i in 1..=space {
        acc += 1.0 / (i as f64).powf(theta);
        cdf.push(acc);
    }
    let total = acc;
    let mut rng = Rng(42);
    let payload = vec![b'z'; 8192];
    let (mut hits, mut gets) = (0u64, 0u64);
    let mut done = 0u64;
    while done < ops {
        let keys: Vec<u64> = (0..BATCH)
            .map(|_| {
                let u = rng.unit() * total;
                // Scatter ranks over the key space (a prime multiplier is a
                // bijection mod the space) so popularity is not
                // correlated with key order.
                let rank = cdf.partition_point(|&x| x < u) as u64;
                (rank * 1_000_003) % space as u64
            })
            .collect();
        let hit = c.get_batch(&keys);
        let misses: Vec<(u64, usize)> = keys
            .iter()
            .zip(&hit)
            .filter(|(_, &h)| !h)
            .map(|(&k, _)| (k, size_of_key(k)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let misses: Vec<_> = misses.into_iter().filter(|m| seen.insert(m.0)).collect();
        if !misses.is_empty() {
            c.set_batch(&misses, &payload);
        }
        if done >= ops / 2 {
            gets += keys.len() as u64;
            hits += hit.iter().filter(|&&h| h).count() as u64;
        }
        done += keys.len() as u64;
    }
    println!("keyspace={space}");
    println!("ops={done}");
    println!("hit_ratio={:.4}", hits as f64 / gets.max(1) as f64);
    c.report();
}

fn phase_shift(c: &mut Client, limit: u64, seconds: f64) {
    let payload = vec![b's'; 10_240];
    // 1. fill with 100-byte values (1.2x the limit so every page is used).
    let mut n = 0u64;
    while n * 100 < limit * 12 / 10 {
        let items: Vec<(u64, usize)> = (n..n + BATCH as u64).map(|i| (i, 100)).collect();
        c.set_batch(&items, &payload);
        n += BATCH as u64;
    }
    // 2. 10 KB values worth twice the limit, paced over `seconds`.
    let big = 2 * limit / 10_240;
    let first = 1u64 << 40;
    let start = Instant::now();
    let mut stored = 0;
    let mut i = 0u64;
    while i < big {
        let items: Vec<(u64, usize)> = (i..(i + 10).min(big))
            .map(|j| (first + j, 10_240))
            .collect();
        stored += c.set_batch(&items, &payload);
        i += items.len() as u64;
        let due = seconds * i as f64 / big as f64;
        let el = start.elapsed().as_secs_f64();
        if due > el {
            std::thread::sleep(Duration::from_secs_f64(due - el));
        }
    }
    let newest: Vec<u64> = (big * 3 / 4..big).map(|j| first + j).collect();
    let mut kept = 0;
    for chunk in newest.chunks(BATCH) {
        kept += c.get_batch(chunk).iter().filter(|&&h| h).count();
    }
    println!("big_written={big}");
    println!("big_stored={stored}");
    println!("newest_quarter={}", newest.len());
    println!("newest_quarter_kept={kept}");
    println!(
        "newest_quarter_pct={:.1}",
        100.0 * kept as f64 / newest.len().max(1) as f64
    );
    c.report();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: memcrab-memtest <fill|zipf|shift> <port> <pid> <limit_mb> [seconds|ops]");
        std::process::exit(64);
    }
    let port: u16 = args[2].parse().expect("port");
    let pid: u32 = args[3].parse().expect("pid");
    let limit: u64 = args[4].parse::<u64>().expect("limit_mb") << 20;
    let mut c = Client::new(port, pid);
    match args[1].as_str() {
        "fill" => phase_fill(&mut c, limit),
        "zipf" => {
            let ops = args
                .get(5)
                .and_then(|v| v.parse().ok())
                .unwrap_or(2_000_000);
            phase_zipf(&mut c, limit, ops)
        }
        "shift" => {
            let secs = args.get(5).and_then(|v| v.parse().ok()).unwrap_or(25.0);
            phase_shift(&mut c, limit, secs)
        }
        other => {
            eprintln!("unknown phase {other}");
            std::process::exit(64);
        }
    }
}
