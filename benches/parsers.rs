//! Parser and request-path benches, no network: `text::parse` on single
//! lines, and `protocol::process` over pipelined batches (parse + execute
//! against the store + render replies) for the text and meta protocols.
//! Short measurement times so a run stays around a minute:
//! `cargo bench --bench parsers`.

mod common;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memcrab::command::{Ctx, Shared};
use memcrab::config::Config;
use memcrab::protocol::{self, text, Session};
use memcrab::stats::WorkerStats;
use std::hint::black_box;

const BATCH: usize = 64;
const KEYS: usize = 10_000;

fn key(i: usize) -> String {
    format!("mb:{i:08}")
}

fn text_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("text_parse");
    g.throughput(Throughput::Elements(1));
    let get = b"get mb:00012345".to_vec();
    let set = b"set mb:00012345 0 0 100".to_vec();
    let cas = b"cas mb:00012345 7 3600 100 123456789 noreply".to_vec();
    let mut get16 = b"get".to_vec();
    for i in 0..16 {
        get16.extend_from_slice(format!(" {}", key(i * 7)).as_bytes());
    }
    for (name, line) in [
        ("get", &get),
        ("get16", &get16),
        ("set", &set),
        ("cas", &cas),
    ] {
        g.bench_function(name, |b| b.iter(|| black_box(text::parse(black_box(line)))));
    }
    g.finish();
}

/// A store with `KEYS` 100-byte values, filled through the text protocol.
struct Server {
    shared: Shared,
    stats: WorkerStats,
}

impl Server {
    fn new() -> Server {
        let config = Config {
            memory_limit_mb: 256,
            ..Config::default()
        };
        let s = Server {
            shared: Shared::new(config),
            stats: WorkerStats::default(),
        };
        let mut input = Vec::new();
        for i in 0..KEYS {
            input.extend_from_slice(format!("set {} 0 0 100\r\n", key(i)).as_bytes());
            input.extend_from_slice(&[b'v'; 100]);
            input.extend_from_slice(b"\r\n");
        }
        let out = s.run(&input);
        assert_eq!(
            out.len(),
            KEYS * 8,
            "preload must answer STORED for every key"
        );
        s
    }

    fn run(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 20);
        self.run_into(input, &mut out);
        out
    }

    fn run_into(&self, input: &[u8], out: &mut Vec<u8>) {
        let ctx = Ctx {
            shared: &self.shared,
            stats: &self.stats,
        };
        let mut session = Session::default();
        let p = protocol::process(&mut session, input, out, &ctx, usize::MAX);
        assert_eq!(p.consumed, input.len());
    }
}

/// `n` requests built by `f(i)` for spread-out key indices.
fn batch(n: usize, f: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    (0..n).flat_map(|i| f((i * 7919) % KEYS)).collect()
}

fn process(c: &mut Criterion) {
    let srv = Server::new();
    let value = [b'v'; 100];
    let with_value = |mut head: Vec<u8>| {
        head.extend_from_slice(&value);
        head.extend_from_slice(b"\r\n");
        head
    };
    let cases: Vec<(&str, usize, Vec<u8>)> = vec![
        (
            "text_get_hit",
            BATCH,
            batch(BATCH, |i| format!("get {}\r\n", key(i)).into_bytes()),
        ),
        (
            "text_get_miss",
            BATCH,
            batch(BATCH, |i| format!("get zz:{i:08}\r\n").into_bytes()),
        ),
        (
            "text_get16_hit",
            BATCH / 16,
            batch(BATCH / 16, |i| {
                let keys: Vec<String> = (0..16).map(|j| key((i + j * 101) % KEYS)).collect();
                format!("get {}\r\n", keys.join(" ")).into_bytes()
            }),
        ),
        (
            "text_set_100b",
            BATCH,
            batch(BATCH, |i| {
                with_value(format!("set {} 0 0 100\r\n", key(i)).into_bytes())
            }),
        ),
        (
            "meta_mg_v_hit",
            BATCH,
            batch(BATCH, |i| format!("mg {} v\r\n", key(i)).into_bytes()),
        ),
        (
            "meta_mg_flags_hit",
            BATCH,
            batch(BATCH, |i| {
                format!("mg {} v f t c k s\r\n", key(i)).into_bytes()
            }),
        ),
        (
            "meta_ms_100b",
            BATCH,
            batch(BATCH, |i| {
                with_value(format!("ms {} 100 T0\r\n", key(i)).into_bytes())
            }),
        ),
    ];
    let mut g = c.benchmark_group("process");
    let mut out = Vec::with_capacity(1 << 20);
    for (name, n, input) in &cases {
        // Sanity: every request gets a reply (no ERROR / CLIENT_ERROR).
        out.clear();
        srv.run_into(input, &mut out);
        assert!(
            !out.windows(5).any(|w| w == b"ERROR"),
            "{name}: {}",
            String::from_utf8_lossy(&out[..out.len().min(200)])
        );
        g.throughput(Throughput::Elements(*n as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                srv.run_into(black_box(input), &mut out);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = text_parse, process
}
criterion_main!(benches);
