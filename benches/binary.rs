//! Binary protocol framing benches, no store: `parse_request` + `decode` on
//! single frames and on a pipelined batch of quiet gets, and
//! `write_response` for a get hit. Short measurement times so a run stays
//! well under a minute: `cargo bench --bench binary`.

mod common;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memcrab::protocol::binary::{
    self, decode, parse_request, write_request, write_response, Frame, Opcode, Status,
};
use std::hint::black_box;

const BATCH: usize = 64;
const MAX_BODY: usize = 1 << 20;

fn key(i: usize) -> String {
    format!("mb:{i:08}")
}

fn request(op: Opcode, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_request(&mut out, op as u8, 7, 0, extras, key, value);
    out
}

/// Frames and decodes every request in `input`; returns how many.
fn parse_all(input: &[u8]) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while let Frame::Request { req, len } = parse_request(&input[pos..], MAX_BODY) {
        if decode(&req).is_ok() {
            n += 1;
        }
        pos += len;
    }
    n
}

fn parse(c: &mut Criterion) {
    let getk = request(Opcode::GetK, &[], key(12345).as_bytes(), &[]);
    let set = request(Opcode::Set, &[0; 8], key(12345).as_bytes(), &[b'v'; 100]);
    let mut getq64 = Vec::new();
    for i in 0..BATCH {
        getq64.extend(request(Opcode::GetQ, &[], key(i * 7919).as_bytes(), &[]));
    }
    getq64.extend(request(Opcode::Noop, &[], &[], &[]));

    let mut g = c.benchmark_group("binary_parse");
    for (name, n, input) in [
        ("getk", 1, &getk),
        ("set_100b", 1, &set),
        ("getq64_noop", BATCH + 1, &getq64),
    ] {
        assert_eq!(parse_all(input), n, "{name}: every frame must decode");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| b.iter(|| parse_all(black_box(input))));
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    let value = [b'v'; 100];
    let flags = 0u32.to_be_bytes();
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("binary_write");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_hit_100b", |b| {
        b.iter(|| {
            out.clear();
            write_response(
                &mut out,
                black_box(Opcode::Get as u8),
                Status::NoError,
                black_box(7),
                black_box(1234),
                &flags,
                &[],
                black_box(&value),
            );
            black_box(out.len())
        })
    });
    g.finish();
    assert_eq!(out.len(), binary::HEADER_LEN + 4 + 100);
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = parse, write
}
criterion_main!(benches);
