//! Store micro-benchmarks: get (hit), set (overwrite) and delete+set on the
//! slab engine, at 1, 2 and 4 threads. Each iteration is a batch of
//! operations per thread on disjoint key ranges of a preloaded store, so the
//! numbers show per-operation cost and how it scales with threads (striped
//! locks, no LRU lock on reads). Kept short: small sample and measurement
//! time (the machine is shared).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memcrab::storage::{DeleteRequest, GetOptions, SetMode, Store, StoreConfig, StoreRequest};
use std::sync::Arc;
use std::time::Duration;

const KEYS: usize = 100_000;
const OPS: usize = 20_000; // per thread per iteration

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| format!("key:{i:08}").into_bytes())
        .collect()
}

fn store() -> Arc<Store> {
    let s = Store::new(StoreConfig {
        memory_limit: 256 << 20,
        ..Default::default()
    });
    let v = vec![b'v'; 100];
    for k in keys() {
        s.store(&StoreRequest::new(&k, &v, 0, 0, SetMode::Set));
    }
    Arc::new(s)
}

/// Runs `op(store, key)` OPS times on each of `threads` threads.
fn run(s: &Arc<Store>, keys: &Arc<Vec<Vec<u8>>>, threads: usize, op: fn(&Store, &[u8])) {
    std::thread::scope(|sc| {
        for t in 0..threads {
            let s = s.clone();
            let keys = keys.clone();
            sc.spawn(move || {
                let base = t * (KEYS / threads);
                let mut x = (t as u64 + 1) * 0x9E37_79B9;
                for _ in 0..OPS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = &keys[base + (x as usize) % (KEYS / threads)];
                    op(&s, k);
                }
            });
        }
    });
}

fn get(s: &Store, k: &[u8]) {
    let n = s.get(k, GetOptions::default(), |v| v.value_len());
    assert!(n.is_some());
}

fn set(s: &Store, k: &[u8]) {
    s.store(&StoreRequest::new(k, &[b'w'; 100], 0, 0, SetMode::Set));
}

fn delete_set(s: &Store, k: &[u8]) {
    s.delete(&DeleteRequest::new(k));
    s.store(&StoreRequest::new(k, &[b'd'; 100], 0, 0, SetMode::Set));
}

type Op = fn(&Store, &[u8]);

fn bench(c: &mut Criterion) {
    let s = store();
    let keys = Arc::new(keys());
    let mut g = c.benchmark_group("store");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let ops: [(&str, Op); 3] = [("get", get), ("set", set), ("delete+set", delete_set)];
    for (name, op) in ops {
        for threads in [1, 2, 4] {
            g.throughput(Throughput::Elements((OPS * threads) as u64));
            g.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &t| {
                b.iter(|| run(&s, &keys, t, op))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
