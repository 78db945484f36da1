//! RESP framing and encoding benches, no network and no store:
//! `resp::parse_command` on single requests and on a pipelined batch, and
//! the bulk reply encoder. Short measurement times like the parser benches:
//! `cargo bench --bench resp`.

mod common;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memcrab::protocol::resp::{self, Limits, Parse};
use std::hint::black_box;

const BATCH: usize = 64;

/// A multibulk request, the way client libraries write one.
fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    resp::push_array_header(&mut v, args.len());
    for a in args {
        resp::push_bulk(&mut v, a);
    }
    v
}

/// Parses every request in `input`; returns how many there were.
fn parse_all<'a>(input: &'a [u8], args: &mut Vec<&'a [u8]>, limits: &Limits) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < input.len() {
        match resp::parse_command(&input[pos..], args, limits) {
            Parse::Command { len } => {
                black_box(&args);
                pos += len;
                n += 1;
            }
            other => panic!("bench input did not parse: {other:?}"),
        }
    }
    n
}

fn parse(c: &mut Criterion) {
    let limits = Limits::with_max_bulk(1 << 20);
    let get = multibulk(&[b"GET", b"mb:00012345"]);
    let set = multibulk(&[b"SET", b"mb:00012345", &[b'v'; 100]]);
    let gets: Vec<u8> = (0..BATCH)
        .flat_map(|i| multibulk(&[b"GET", format!("mb:{i:08}").as_bytes()]))
        .collect();
    let ping = b"PING\r\n".to_vec();
    let mut g = c.benchmark_group("resp_parse");
    let mut args = Vec::with_capacity(8);
    for (name, n, input) in [
        ("get", 1, &get),
        ("set_100b", 1, &set),
        ("get_pipelined", BATCH, &gets),
        ("inline_ping", 1, &ping),
    ] {
        assert_eq!(parse_all(input, &mut args, &limits), n, "{name}");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            b.iter(|| parse_all(black_box(input), &mut args, &limits))
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let value = [b'v'; 100];
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("resp_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bulk_100b", |b| {
        b.iter(|| {
            out.clear();
            resp::push_bulk(&mut out, black_box(&value));
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = parse, encode
}
criterion_main!(benches);
