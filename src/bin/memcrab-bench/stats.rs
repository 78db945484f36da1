//! Per-thread counters and latency histograms, merged at the end.

use crate::args::BulkOp;
use crate::reply::{Expect, Outcome};
use hdrhistogram::Histogram;
use std::time::Duration;

pub struct ThreadStats {
    /// Requests completed (a K-key get is one request).
    pub ops: u64,
    pub gets: u64,
    pub sets: u64,
    /// Keys asked for by gets.
    pub get_keys: u64,
    pub hits: u64,
    /// Error replies from the server (recorded window).
    pub errors: u64,
    /// Values whose length or bytes differ from what was set.
    pub bad_values: u64,
    /// Error replies outside the window (warm-up, preload).
    pub unrecorded_errors: u64,
    /// Replies the parser could not account for (connection dropped).
    pub proto_errors: u64,
    /// Connections lost (EOF, reset, desync).
    pub conn_errors: u64,
    pub first_error: Option<String>,
    /// Request latency in nanoseconds.
    pub hist: Histogram<u64>,
}

impl ThreadStats {
    pub fn new() -> ThreadStats {
        ThreadStats {
            ops: 0,
            gets: 0,
            sets: 0,
            get_keys: 0,
            hits: 0,
            errors: 0,
            bad_values: 0,
            unrecorded_errors: 0,
            proto_errors: 0,
            conn_errors: 0,
            first_error: None,
            hist: Histogram::new_with_bounds(1_000, 120_000_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, expect: Expect, nkeys: usize, o: &Outcome, latency: Duration) {
        self.ops += 1;
        match expect {
            Expect::TextGet(_) | Expect::MetaGet(_) => {
                self.gets += 1;
                self.get_keys += nkeys as u64;
                self.hits += o.hits as u64;
            }
            Expect::TextSet | Expect::MetaSet => self.sets += 1,
        }
        self.errors += o.errors as u64;
        self.bad_values += o.bad_values as u64;
        self.hist
            .saturating_record(latency.as_nanos().max(1_000) as u64);
    }

    /// A bulk batch of `n` requests, all answered as expected.
    pub fn record_batch(&mut self, op: BulkOp, n: u32, latency: Duration) {
        let n = u64::from(n);
        self.ops += n;
        match op {
            BulkOp::Get => {
                self.gets += n;
                self.get_keys += n;
                self.hits += n;
            }
            // Increments are writes: counted with the sets.
            BulkOp::Set | BulkOp::Incr => self.sets += n,
        }
        self.hist
            .saturating_record(latency.as_nanos().max(1_000) as u64);
    }

    pub fn merge(&mut self, o: &ThreadStats) {
        self.ops += o.ops;
        self.gets += o.gets;
        self.sets += o.sets;
        self.get_keys += o.get_keys;
        self.hits += o.hits;
        self.errors += o.errors;
        self.bad_values += o.bad_values;
        self.unrecorded_errors += o.unrecorded_errors;
        self.proto_errors += o.proto_errors;
        self.conn_errors += o.conn_errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        let _ = self.hist.add(&o.hist);
    }
}
