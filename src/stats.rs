//! Counters. Each worker thread owns a [`WorkerStats`] and is its only
//! writer, so increments are plain relaxed load+store (no locked RMW on the
//! hot path); `stats` sums every worker's block. Connection-level counters
//! shared by all threads live in [`ServerStats`].

use crate::storage::StoreStats;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by one thread, read by any. `stats reset` (run on any
/// thread) records a base instead of writing the value, so the owner stays
/// the only writer of the count and no increment is lost to a race.
#[derive(Default, Debug)]
pub struct Counter {
    value: AtomicU64,
    base: AtomicU64,
}

impl Counter {
    /// Single-writer increment: cheaper than `fetch_add`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.value.store(
            self.value.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    #[inline]
    pub fn incr(&self) {
        self.add(1)
    }
    /// Count since the last reset.
    #[inline]
    pub fn get(&self) -> u64 {
        self.value
            .load(Ordering::Relaxed)
            .wrapping_sub(self.base.load(Ordering::Relaxed))
    }
    pub fn reset(&self) {
        self.base
            .store(self.value.load(Ordering::Relaxed), Ordering::Relaxed)
    }
}

macro_rules! worker_stats {
    ($($name:ident),* $(,)?) => {
        /// Per-worker request counters, named as memcached names them in `stats`.
        #[derive(Default, Debug)]
        pub struct WorkerStats {
            $(pub $name: Counter,)*
            /// Per slab class (`stats slabs`).
            pub classes: ClassTable,
        }

        /// A summed snapshot of every worker's counters.
        #[derive(Default, Debug, Clone, Copy)]
        pub struct WorkerTotals { $(pub $name: u64,)* }

        impl WorkerStats {
            pub fn add_to(&self, t: &mut WorkerTotals) { $(t.$name += self.$name.get();)* }
            pub fn reset(&self) {
                $(self.$name.reset();)*
                self.classes.reset();
            }
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
    store_too_large,
    store_no_memory,
    bytes_read,
    bytes_written,
    conn_yields,
);

macro_rules! class_stats {
    ($($name:ident),* $(,)?) => {
        /// One worker's counters for one slab class: memcached's
        /// `slab_stats`, printed per class by `stats slabs` in this order.
        #[derive(Default, Debug)]
        pub struct ClassStats { $(pub $name: Counter,)* }

        impl ClassStats {
            fn reset(&self) { $(self.$name.reset();)* }
            fn add_to(&self, t: &mut [u64]) {
                let mut i = 0;
                $(t[i] += self.$name.get(); i += 1;)*
                let _ = i;
            }
            /// The counters' names, in `stats slabs` order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name),)*];
        }
    };
}

class_stats!(
    get_hits,
    cmd_set,
    delete_hits,
    incr_hits,
    decr_hits,
    cas_hits,
    cas_badval,
    touch_hits,
);

/// A worker's [`ClassStats`] for every slab class.
#[derive(Debug)]
pub struct ClassTable(Box<[ClassStats]>);

impl Default for ClassTable {
    fn default() -> ClassTable {
        ClassTable(
            (0..=crate::storage::MAX_CLASSES)
                .map(|_| ClassStats::default())
                .collect(),
        )
    }
}

impl ClassTable {
    /// Class `cls`'s counters (class 0, counted nowhere, for an id out of range).
    #[inline]
    pub fn get(&self, cls: usize) -> &ClassStats {
        self.0.get(cls).unwrap_or(&self.0[0])
    }
    fn reset(&self) {
        self.0.iter().for_each(ClassStats::reset)
    }
}

/// Class `cls`'s counters summed over every worker, named for `stats slabs`.
pub fn class_rows(ctx: &Ctx, cls: usize) -> Vec<(&'static str, u64)> {
    let mut t = vec![0u64; ClassStats::NAMES.len()];
    match ctx.shared.workers.get() {
        Some(workers) if !workers.is_empty() => {
            for w in workers {
                w.classes.get(cls).add_to(&mut t);
            }
        }
        _ => ctx.stats.classes.get(cls).add_to(&mut t),
    }
    ClassStats::NAMES.iter().copied().zip(t).collect()
}

/// Counters shared by all threads (connection accounting).
#[derive(Default, Debug)]
pub struct ServerStats {
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connection_structures: AtomicU64,
    pub idle_kicks: AtomicU64,
    /// The store's counters at the last `stats reset` (the store itself is
    /// never reset; `stats` prints the difference, as memcached would).
    pub store_base: parking_lot::Mutex<StoreStats>,
    /// `stats detail`: per-key-prefix counters, collected only while on.
    pub detail: PrefixStats,
}

/// memcached's `stats detail` prefix counters. Keys are grouped by the text
/// before the first delimiter (`-D`, ':' by default); keys without one are
/// not counted. Off by default,
/// when the hot path pays one relaxed load.
#[derive(Default, Debug)]
pub struct PrefixStats {
    enabled: std::sync::atomic::AtomicBool,
    /// (prefix, [get, hit, set, del]) in first-seen order.
    rows: parking_lot::Mutex<Vec<(Vec<u8>, [u64; 4])>>,
}

/// Bound on distinct prefixes so a client cannot grow this without limit.
const MAX_PREFIXES: usize = 4096;

impl PrefixStats {
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed)
    }
    pub fn clear(&self) {
        self.rows.lock().clear()
    }
    fn record(&self, delim: u8, key: &[u8], field: usize, n: u64) {
        let Some(end) = memchr::memchr(delim, key) else {
            return;
        };
        let prefix = &key[..end];
        let mut rows = self.rows.lock();
        if let Some(row) = rows.iter_mut().find(|(p, _)| p.as_slice() == prefix) {
            row.1[field] += n;
        } else if rows.len() < MAX_PREFIXES {
            let mut counts = [0; 4];
            counts[field] = n;
            rows.push((prefix.to_vec(), counts));
        }
    }
    /// A key looked up by get/gets/gat/gats.
    #[inline]
    pub fn record_get(&self, delim: u8, key: &[u8], hit: bool) {
        if self.enabled() {
            self.record(delim, key, 0, 1);
            if hit {
                self.record(delim, key, 1, 1);
            }
        }
    }
    #[inline]
    pub fn record_set(&self, delim: u8, key: &[u8]) {
        if self.enabled() {
            self.record(delim, key, 2, 1);
        }
    }
    #[inline]
    pub fn record_delete(&self, delim: u8, key: &[u8]) {
        if self.enabled() {
            self.record(delim, key, 3, 1);
        }
    }
    /// `stats detail dump`: one `PREFIX` line per prefix, then END.
    pub fn dump(&self, out: &mut Vec<u8>) {
        for (prefix, [get, hit, set, del]) in self.rows.lock().iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            let _ = write!(out, " get {get} hit {hit} set {set} del {del}\r\n");
        }
        out.extend_from_slice(b"END\r\n");
    }
}

/// The store's counters with those since the last `stats reset`; gauges
/// (items, bytes, limits) are left as they are.
pub fn store_stats_since_reset(shared: &crate::command::Shared) -> StoreStats {
    let mut s = shared.store.stats();
    let b = *shared.server_stats.store_base.lock();
    macro_rules! since {
        ($($f:ident),*) => { $(s.$f = s.$f.saturating_sub(b.$f);)* };
    }
    since!(
        total_items,
        evictions,
        evicted_unfetched,
        evicted_active,
        expired_unfetched,
        reclaimed,
        get_expired,
        get_flushed,
        slabs_moved,
        crawler_reclaimed,
        moves_to_cold,
        moves_to_warm,
        lru_maintainer_juggles,
        malloc_fails
    );
    s
}

// ---------------------------------------------------------------------------
// `stats` output. Field names and order follow memcached 1.6 so dashboards
// and clients that scrape them keep working.

use crate::command::Ctx;
use std::fmt::Display;
use std::io::Write as _;

/// Every worker's counters summed (or just this worker's before registration).
pub fn totals(ctx: &Ctx) -> WorkerTotals {
    let mut t = WorkerTotals::default();
    match ctx.shared.workers.get() {
        Some(workers) if !workers.is_empty() => {
            for w in workers {
                w.add_to(&mut t);
            }
        }
        _ => ctx.stats.add_to(&mut t),
    }
    t
}

/// Appends one `STAT <name> <value>\r\n` line.
pub fn stat(out: &mut Vec<u8>, name: &str, value: impl Display) {
    let _ = write!(out, "STAT {name} {value}\r\n");
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// (user, system) CPU seconds of this process, as "%ld.%06ld" strings.
fn rusage() -> (String, String) {
    // SAFETY: getrusage only writes into the zeroed struct we pass it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0;
    if !ok {
        return ("0.000000".into(), "0.000000".into());
    }
    let f = |tv: libc::timeval| format!("{}.{:06}", tv.tv_sec, tv.tv_usec);
    (f(ru.ru_utime), f(ru.ru_stime))
}

/// `stats` with no argument. The key set and order are memcached 1.6's,
/// including its conditional groups (crawler, maintainer, idle_timeout), so
/// scripts that count or index the lines keep working. Keys for machinery
/// memcrab does not have (libevent, response objects, logger watchers, NAPI)
/// are printed with neutral values; the README lists them.
pub fn write_general(out: &mut Vec<u8>, ctx: &Ctx) {
    let shared = ctx.shared;
    let cfg = &shared.config;
    let t = totals(ctx);
    let ss = &shared.server_stats;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let st = store_stats_since_reset(shared);
    let now = crate::clock::now();
    let (ru_user, ru_sys) = rusage();

    stat(out, "pid", std::process::id());
    stat(out, "uptime", now.saturating_sub(2));
    stat(out, "time", crate::clock::unix_time());
    stat(out, "version", crate::VERSION);
    stat(out, "libevent", "none");
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", ru_user);
    stat(out, "rusage_system", ru_sys);
    stat(out, "max_connections", cfg.conn_limit);
    stat(out, "curr_connections", load(&ss.curr_connections));
    stat(out, "total_connections", load(&ss.total_connections));
    stat(out, "rejected_connections", load(&ss.rejected_connections));
    stat(
        out,
        "connection_structures",
        load(&ss.connection_structures),
    );
    for name in [
        "response_obj_oom",
        "response_obj_count",
        "response_obj_bytes",
        "read_buf_count",
        "read_buf_bytes",
        "read_buf_bytes_free",
        "read_buf_oom",
        "reserved_fds",
    ] {
        stat(out, name, 0);
    }
    stat(out, "cmd_get", t.cmd_get);
    stat(out, "cmd_set", t.cmd_set);
    stat(out, "cmd_flush", t.cmd_flush);
    stat(out, "cmd_touch", t.cmd_touch);
    stat(out, "cmd_meta", t.cmd_meta);
    stat(out, "get_hits", t.get_hits);
    stat(out, "get_misses", t.get_misses);
    stat(out, "get_expired", st.get_expired);
    stat(out, "get_flushed", st.get_flushed);
    stat(out, "delete_misses", t.delete_misses);
    stat(out, "delete_hits", t.delete_hits);
    stat(out, "incr_misses", t.incr_misses);
    stat(out, "incr_hits", t.incr_hits);
    stat(out, "decr_misses", t.decr_misses);
    stat(out, "decr_hits", t.decr_hits);
    stat(out, "cas_misses", t.cas_misses);
    stat(out, "cas_hits", t.cas_hits);
    stat(out, "cas_badval", t.cas_badval);
    stat(out, "touch_hits", t.touch_hits);
    stat(out, "touch_misses", t.touch_misses);
    stat(out, "store_too_large", t.store_too_large);
    stat(out, "store_no_memory", t.store_no_memory);
    stat(out, "auth_cmds", 0);
    stat(out, "auth_errors", 0);
    if cfg.idle_timeout > 0 {
        stat(out, "idle_kicks", load(&ss.idle_kicks));
    }
    stat(out, "bytes_read", t.bytes_read);
    stat(out, "bytes_written", t.bytes_written);
    stat(out, "limit_maxbytes", st.limit_maxbytes);
    stat(out, "accepting_conns", 1);
    // memcrab never stops accepting: over -c it answers and closes instead.
    stat(out, "listen_disabled_num", 0);
    stat(out, "time_in_listen_disabled_us", 0);
    stat(out, "threads", cfg.threads);
    stat(out, "conn_yields", t.conn_yields);
    stat(out, "hash_power_level", st.hash_power_level);
    stat(out, "hash_bytes", st.hash_bytes);
    stat(out, "hash_is_expanding", 0);
    stat(out, "slab_reassign_rescues", st.slab_reassign_rescues);
    stat(
        out,
        "slab_reassign_chunk_rescues",
        st.slab_reassign_chunk_rescues,
    );
    stat(
        out,
        "slab_reassign_evictions_nomem",
        st.slab_reassign_evictions_nomem,
    );
    stat(out, "slab_reassign_inline_reclaim", 0);
    stat(out, "slab_reassign_busy_items", st.slab_reassign_busy_items);
    stat(out, "slab_reassign_busy_deletes", 0);
    stat(out, "slab_reassign_running", st.slab_reassign_running as u8);
    stat(out, "slabs_moved", st.slabs_moved);
    if cfg.lru_crawler {
        stat(out, "lru_crawler_running", st.lru_crawler_running as u8);
        stat(out, "lru_crawler_starts", 0);
    }
    if cfg.lru_maintainer {
        stat(out, "lru_maintainer_juggles", st.lru_maintainer_juggles);
    }
    stat(out, "malloc_fails", st.malloc_fails);
    for name in [
        "log_worker_dropped",
        "log_worker_written",
        "log_watcher_skipped",
        "log_watcher_sent",
        "log_watchers",
        "unexpected_napi_ids",
        "round_robin_fallback",
    ] {
        stat(out, name, 0);
    }
    stat(out, "bytes", st.bytes);
    stat(out, "curr_items", st.curr_items);
    stat(out, "total_items", st.total_items);
    stat(out, "slab_global_page_pool", st.slab_global_page_pool);
    stat(out, "expired_unfetched", st.expired_unfetched);
    stat(out, "evicted_unfetched", st.evicted_unfetched);
    if cfg.lru_maintainer {
        stat(out, "evicted_active", st.evicted_active);
    }
    stat(out, "evictions", st.evictions);
    stat(out, "reclaimed", st.reclaimed);
    stat(out, "crawler_reclaimed", st.crawler_reclaimed);
    stat(out, "crawler_items_checked", 0);
    stat(out, "lrutail_reflocked", 0);
    if cfg.lru_maintainer {
        stat(out, "moves_to_cold", st.moves_to_cold);
        stat(out, "moves_to_warm", st.moves_to_warm);
        stat(out, "moves_within_lru", 0);
        stat(out, "direct_reclaims", 0);
        stat(out, "lru_bumps_dropped", 0);
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats settings`: the command line as the server understood it.
pub fn write_settings(out: &mut Vec<u8>, ctx: &Ctx) {
    let c = &ctx.shared.config;
    let verbosity = ctx
        .shared
        .verbosity
        .load(std::sync::atomic::Ordering::Relaxed);
    // cache_memlimit changes the limit at run time; the store has the current one.
    stat(out, "maxbytes", ctx.shared.store.stats().limit_maxbytes);
    stat(out, "maxconns", c.conn_limit);
    stat(out, "tcpport", c.port);
    stat(out, "udpport", c.udp_port);
    let inter = if c.listen.is_empty() {
        "NULL".to_string()
    } else {
        c.listen.join(",")
    };
    stat(out, "inter", inter);
    stat(out, "verbosity", verbosity);
    stat(out, "evictions", if c.evict_to_free { "on" } else { "off" });
    stat(
        out,
        "domain_socket",
        c.unix_socket.as_deref().unwrap_or("NULL"),
    );
    stat(out, "umask", format!("{:o}", c.unix_mask));
    stat(out, "shutdown_command", yes_no(c.enable_shutdown));
    stat(out, "growth_factor", format!("{:.2}", c.growth_factor));
    stat(out, "chunk_size", c.chunk_min);
    stat(out, "num_threads", c.threads);
    stat(out, "num_threads_per_udp", c.threads);
    stat(out, "stat_key_prefix", c.prefix_delimiter);
    let detail = ctx.shared.server_stats.detail.enabled();
    stat(out, "detail_enabled", yes_no(detail));
    stat(out, "reqs_per_event", c.reqs_per_event);
    stat(out, "cas_enabled", yes_no(c.use_cas));
    stat(out, "tcp_backlog", c.backlog);
    let proto = match c.protocol.as_str() {
        "ascii" => "ascii",
        "binary" => "binary",
        _ => "auto-negotiate",
    };
    stat(out, "binding_protocol", proto);
    stat(out, "auth_enabled_sasl", yes_no(c.sasl));
    stat(out, "auth_enabled_ascii", "no");
    stat(out, "item_size_max", c.item_size_max);
    stat(out, "maxconns_fast", yes_no(c.maxconns_fast));
    stat(out, "hashpower_init", c.hashpower);
    stat(out, "slab_reassign", yes_no(c.slab_reassign));
    stat(out, "slab_automove", c.slab_automove);
    stat(out, "slab_chunk_max", c.slab_chunk_max);
    stat(out, "lru_crawler", yes_no(c.lru_crawler));
    stat(out, "flush_enabled", yes_no(!c.disable_flush_all));
    stat(out, "dump_enabled", yes_no(!c.disable_dumping));
    stat(out, "lru_maintainer_thread", yes_no(c.lru_maintainer));
    stat(out, "lru_segmented", "yes");
    stat(out, "hot_lru_pct", c.hot_lru_pct);
    stat(out, "warm_lru_pct", c.warm_lru_pct);
    stat(out, "temp_lru", yes_no(c.temporary_ttl > 0));
    stat(out, "temporary_ttl", c.temporary_ttl);
    stat(out, "idle_timeout", c.idle_timeout);
    // `-o` options accepted for compatibility but not implemented, as given.
    for opt in &c.unsupported_options {
        let (name, value) = opt.split_once('=').unwrap_or((opt.as_str(), "yes"));
        stat(out, name, value);
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats items|slabs|sizes|conns` style groups: rows then `END`.
pub fn write_rows(out: &mut Vec<u8>, rows: &[(String, String)]) {
    for (name, value) in rows {
        stat(out, name, value);
    }
    out.extend_from_slice(b"END\r\n");
}
