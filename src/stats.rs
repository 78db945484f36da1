//! Counters. Each worker thread owns a [`WorkerStats`] and is its only
//! writer, so increments are plain relaxed load+store (no locked RMW on the
//! hot path); `stats` sums every worker's block. Connection-level counters
//! shared by all threads live in [`ServerStats`].

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by one thread, read by any.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Single-writer increment: cheaper than `fetch_add`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    #[inline]
    pub fn incr(&self) {
        self.add(1)
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed)
    }
}

macro_rules! worker_stats {
    ($($name:ident),* $(,)?) => {
        /// Per-worker request counters, named as memcached names them in `stats`.
        #[derive(Default, Debug)]
        pub struct WorkerStats { $(pub $name: Counter,)* }

        /// A summed snapshot of every worker's counters.
        #[derive(Default, Debug, Clone, Copy)]
        pub struct WorkerTotals { $(pub $name: u64,)* }

        impl WorkerStats {
            pub fn add_to(&self, t: &mut WorkerTotals) { $(t.$name += self.$name.get();)* }
            pub fn reset(&self) { $(self.$name.reset();)* }
        }
    };
}

worker_stats!(
    cmd_get,
    cmd_set,
    cmd_flush,
    cmd_touch,
    cmd_meta,
    get_hits,
    get_misses,
    delete_hits,
    delete_misses,
    incr_hits,
    incr_misses,
    decr_hits,
    decr_misses,
    cas_hits,
    cas_misses,
    cas_badval,
    touch_hits,
    touch_misses,
    bytes_read,
    bytes_written,
    conn_yields,
);

/// Counters shared by all threads (connection accounting).
#[derive(Default, Debug)]
pub struct ServerStats {
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connection_structures: AtomicU64,
    pub idle_kicks: AtomicU64,
}
