//! The item store: the only module that owns item memory. No I/O here.
//!
//! Every protocol reaches items through the narrow API on [`Store`]:
//! `get` (with a closure that sees the item while it is pinned), `store`,
//! `delete`, `arith`, `flush_all`, plus stats. Protocol code never sees how
//! items are laid out; it reads values through [`ItemView`].
//!
//! Times are [`RelTime`](crate::clock::RelTime) seconds; callers convert
//! protocol exptimes with [`crate::clock::exptime_to_rel`].

mod arena;
mod dump;
pub use dump::MetaRow;
mod engine;
mod hash;
mod hashtable;
mod item;
mod maintainer;
mod report;
mod slab;

use crate::clock::RelTime;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use engine::{parse_u64, ItemView, ValueParts};
pub use hash::hash_key;
pub use maintainer::ReassignResult;
pub use slab::MAX_CLASSES;

/// Settings the store needs, taken from the command line.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `-m` in bytes.
    pub memory_limit: usize,
    /// `-I` in bytes: largest item (key + value + header) accepted.
    pub item_size_max: usize,
    /// `-f` slab growth factor.
    pub growth_factor: f64,
    /// `-n` minimum space for key + value + flags.
    pub chunk_min: usize,
    /// false with `-C`: CAS uniques are not kept (always 0).
    pub use_cas: bool,
    /// false with `-M`: fail with `NoMemory` instead of evicting.
    pub evict_to_free: bool,
    pub hot_lru_pct: u32,
    pub warm_lru_pct: u32,
    /// Items whose TTL is below this go to the TEMP LRU (0 = TEMP off).
    pub temporary_ttl: u32,
    pub slab_chunk_max: usize,
    /// Initial hash table size as a power of two.
    pub hashpower: u32,
    pub lru_crawler: bool,
    pub lru_maintainer: bool,
    pub slab_reassign: bool,
    /// 0 off, 1 default automove, 2 aggressive.
    pub slab_automove: u32,
    /// Ask for transparent huge pages for the slab arena.
    pub huge_pages: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            memory_limit: 64 << 20,
            item_size_max: 1 << 20,
            growth_factor: 1.25,
            chunk_min: 48,
            use_cas: true,
            evict_to_free: true,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            temporary_ttl: 61,
            slab_chunk_max: 512 << 10,
            hashpower: 16,
            lru_crawler: true,
            lru_maintainer: true,
            slab_reassign: true,
            slab_automove: 1,
            huge_pages: true,
        }
    }
}

/// Metadata of one item. `get` hands a copy to its closure; the writable
/// fields (`exptime`, `stale`, `win_sent`) are written back when it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemMeta {
    pub flags: u32,
    pub cas: u64,
    /// Relative exptime; 0 = never.
    pub exptime: RelTime,
    /// Relative time of the last access before this one.
    pub last_access: RelTime,
    /// Was the item fetched before this access?
    pub fetched: bool,
    /// Marked stale by meta invalidation (`md I`, `ms I`).
    pub stale: bool,
    /// A meta "win" token was handed out (`W` sent, others get `Z`).
    pub win_sent: bool,
}

/// How `store` combines a new value with an existing item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

/// One write. Built by the command layer from any protocol.
#[derive(Clone, Copy, Debug)]
pub struct StoreRequest<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub exptime: RelTime,
    pub mode: SetMode,
    /// Compare-and-swap: store only if the item's CAS equals this.
    pub compare_cas: Option<u64>,
    /// Explicit new CAS value (meta `E`) instead of a fresh one.
    pub new_cas: Option<u64>,
    /// Meta `I`: when `compare_cas` is older than the item's, store but mark
    /// stale; the new item keeps the old one's exptime and `win_sent` (memcached).
    pub invalidate: bool,
    /// Meta `mg N` (vivify): create the item with its win token already handed
    /// out (`win_sent`), atomically, so only its creator gets `W`.
    pub win_sent: bool,
}

impl<'a> StoreRequest<'a> {
    pub fn new(
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: RelTime,
        mode: SetMode,
    ) -> Self {
        StoreRequest {
            key,
            value,
            flags,
            exptime,
            mode,
            compare_cas: None,
            new_cas: None,
            invalidate: false,
            win_sent: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored; carries the item's new CAS.
    Stored(u64),
    /// add on existing / replace, append, prepend on missing.
    NotStored,
    /// CAS mismatch.
    Exists,
    /// CAS given but no item.
    NotFound,
    /// Larger than `-I` allows.
    TooLarge,
    /// No memory and eviction is off (`-M`) or impossible.
    NoMemory,
}

/// One delete.
#[derive(Clone, Copy, Debug)]
pub struct DeleteRequest<'a> {
    pub key: &'a [u8],
    pub compare_cas: Option<u64>,
    /// Meta `md I`: mark stale (and set this exptime if Some(Some)) instead of removing.
    pub invalidate: Option<Option<RelTime>>,
    /// Meta `md x`: drop the value and client flags but keep the item.
    pub remove_value: bool,
    pub new_cas: Option<u64>,
}

impl<'a> DeleteRequest<'a> {
    pub fn new(key: &'a [u8]) -> Self {
        DeleteRequest {
            key,
            compare_cas: None,
            invalidate: None,
            remove_value: false,
            new_cas: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted (or invalidated); the item's slab class, for `stats slabs`.
    Deleted {
        class: u8,
    },
    NotFound,
    Exists,
}

/// One incr/decr.
#[derive(Clone, Copy, Debug)]
pub struct ArithRequest<'a> {
    pub key: &'a [u8],
    pub incr: bool,
    pub delta: u64,
    pub compare_cas: Option<u64>,
    pub new_cas: Option<u64>,
    /// Meta `ma N`: create with this initial value and exptime on miss.
    pub vivify: Option<(u64, RelTime)>,
    /// Meta `ma T`: update the exptime on hit.
    pub new_exptime: Option<RelTime>,
}

impl<'a> ArithRequest<'a> {
    pub fn new(key: &'a [u8], incr: bool, delta: u64) -> Self {
        ArithRequest {
            key,
            incr,
            delta,
            compare_cas: None,
            new_cas: None,
            vivify: None,
            new_exptime: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOutcome {
    /// New value and new CAS; `created` when vivified. `class`: the slab
    /// class of the item found (for `stats slabs`).
    Value {
        value: u64,
        cas: u64,
        exptime: RelTime,
        created: bool,
        class: u8,
    },
    NotFound,
    NonNumeric,
    Exists,
    /// Could not allocate the (longer) value.
    NoMemory,
}

/// Options for one read.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetOptions {
    /// Skip the LRU bump and the last-access / fetched update (meta `u`).
    pub no_bump: bool,
    /// Touch: set this exptime (gat, touch, meta `T`).
    pub new_exptime: Option<RelTime>,
}

/// Counters the store keeps; the stats module prints them.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub curr_items: u64,
    pub total_items: u64,
    pub bytes: u64,
    pub evictions: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub expired_unfetched: u64,
    pub reclaimed: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub limit_maxbytes: u64,
    pub hash_power_level: u32,
    pub hash_bytes: u64,
    pub total_malloced: u64,
    pub slabs_moved: u64,
    pub slab_reassign_rescues: u64,
    pub slab_reassign_chunk_rescues: u64,
    pub slab_reassign_evictions_nomem: u64,
    pub slab_reassign_busy_items: u64,
    /// Pages in the global pool: given back by a class, not yet taken.
    pub slab_global_page_pool: u64,
    pub crawler_reclaimed: u64,
    pub moves_to_cold: u64,
    pub moves_to_warm: u64,
    pub lru_maintainer_juggles: u64,
    pub slab_reassign_running: bool,
    pub lru_crawler_running: bool,
    pub malloc_fails: u64,
}

/// The slab-allocated, segmented-LRU store (see `engine.rs` for the design
/// and its locking rules). Background threads stop when it is dropped.
/// A key's place in the hash table, from [`Store::prefetch_bucket`].
#[derive(Clone, Copy, Debug)]
pub struct Prefetch(u64);

pub struct Store {
    inner: Arc<engine::Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Store {
    pub fn new(cfg: StoreConfig) -> Store {
        crate::clock::init();
        let inner = Arc::new(engine::Inner::new(cfg));
        let mut threads = Vec::new();
        let spawn = |name: &str, f: fn(Arc<engine::Inner>)| {
            let i = inner.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(i))
                .ok()
        };
        if inner.cfg.lru_maintainer {
            threads.extend(spawn("lru-maintainer", maintainer::maintainer));
        }
        if inner.cfg.lru_crawler {
            if let Some(t) = spawn("lru-crawler", maintainer::crawler) {
                let _ = inner.crawler.set(t.thread().clone());
                threads.push(t);
            }
        }
        Store { inner, threads }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.cfg
    }

    /// Starts bringing what a lookup of `key` reads into cache, in two
    /// stages so that other work can run while each load is in flight:
    /// this one the stripe lock and bucket (pure prefetches);
    /// [`Store::prefetch_item`] with the token the bucket's first item.
    #[inline]
    pub fn prefetch_bucket(&self, key: &[u8]) -> Prefetch {
        let hv = hash::hash_key(key);
        self.inner.ht.prefetch_bucket(hv);
        Prefetch(hv)
    }

    /// The second stage: reads the bucket (under its stripe lock) and
    /// prefetches the header of its first item.
    #[inline]
    pub fn prefetch_item(&self, p: Prefetch) {
        self.inner.ht.prefetch_first_item(&self.inner.arena, p.0);
    }

    /// Looks up `key`; on a hit calls `f` with the item pinned and returns its result.
    /// Changes `f` makes to `meta.exptime`, `meta.stale`, `meta.win_sent` are kept.
    pub fn get<R>(
        &self,
        key: &[u8],
        opts: GetOptions,
        f: impl FnOnce(&mut ItemView) -> R,
    ) -> Option<R> {
        self.inner.get(key, opts, f)
    }

    pub fn store(&self, req: &StoreRequest) -> StoreOutcome {
        self.inner.store(req)
    }

    pub fn delete(&self, req: &DeleteRequest) -> DeleteOutcome {
        self.inner.delete(req)
    }

    pub fn arith(&self, req: &ArithRequest) -> ArithOutcome {
        self.inner.arith(req)
    }

    /// Invalidates every item last written before `at` (relative time; 0 = now).
    pub fn flush_all(&self, at: RelTime) {
        self.inner.flush_all(at)
    }

    /// `cache_memlimit`: changes the memory limit at run time (pages already
    /// taken are kept when lowering it).
    pub fn set_memory_limit(&self, bytes: usize) {
        self.inner.set_limit(bytes)
    }

    pub fn stats(&self) -> StoreStats {
        report::stats(&self.inner)
    }

    /// `stats reset`'s part in the store: zeroes every class's counters
    /// (the `stats items` rows: evicted, reclaimed, moves ...), as
    /// memcached's `item_stats_reset` does. Item and page counts stay.
    pub fn reset_class_counters(&self) {
        for cls in 1..self.inner.classes.len() {
            let mut cs = self.inner.lock_class(cls);
            cs.c = slab::ClassCounters::default();
            // automove measures evictions since its last look from here
            cs.evictions_seen = 0;
        }
    }

    /// `stats slabs`, `stats items`, `stats sizes`: (name, value) rows, or None for unknown groups.
    pub fn stats_group(&self, group: &str) -> Option<Vec<(String, String)>> {
        report::group(&self.inner, group, &|_| Vec::new())
    }

    /// [`Store::stats_group`] with rows of the caller's own for each class
    /// that `stats slabs` lists (memcached's per-class command counters,
    /// which the command layer keeps): `per_class(class)` gives them.
    pub fn stats_group_with(
        &self,
        group: &str,
        per_class: &dyn Fn(usize) -> Vec<(&'static str, u64)>,
    ) -> Option<Vec<(String, String)>> {
        report::group(&self.inner, group, per_class)
    }

    /// The slab class an item with this key and value length goes to, or
    /// None when it is larger than `-I` allows.
    pub fn class_of_size(&self, nkey: usize, nbytes: usize) -> Option<usize> {
        self.inner.class_of_size(nkey, nbytes)
    }

    /// `slabs reassign <src> <dst>`: moves one page from class `src` (-1 =
    /// any) towards `dst`. Reply with `result.reply()`.
    pub fn slabs_reassign(&self, src: i32, dst: i32) -> ReassignResult {
        maintainer::reassign(&self.inner, src, dst)
    }

    /// `slabs automove <0|1|2>`: false for an invalid level (reply `ERROR`).
    pub fn slabs_automove(&self, level: u32) -> bool {
        if level > 2 {
            return false;
        }
        self.inner
            .automove
            .store(level, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// Runs one crawler sweep now; returns items reclaimed (tests, `lru_crawler crawl`).
    pub fn crawl_now(&self) -> u64 {
        maintainer::crawl_once(&self.inner)
    }

    /// Number of slab classes (ids 1..=n), for validating class arguments.
    pub fn slab_classes(&self) -> usize {
        self.inner.classes.len() - 1
    }
}

/// An item allocated for a value that is still arriving (memcached's
/// `conn_nread`): its owner writes the value straight into item memory,
/// then [`Store::store_reserved`] links it. It is invisible until then —
/// not in the hash table or any LRU, so lookups, the crawler, evictions and
/// the page mover (which keeps pages holding such chunks) leave it alone —
/// and dropping it (a client that went away) frees it.
pub struct Reserved {
    inner: Arc<engine::Inner>,
    r: arena::Ref,
    len: usize,
}

impl Reserved {
    /// Length of the value it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value area from offset `off` to the end of the piece holding it
    /// (a chained item has several pieces); empty once `off` reaches `len`.
    pub fn space_at(&mut self, off: usize) -> &mut [u8] {
        // SAFETY: the item is reserved and owned by `self` (never linked
        // while `self` exists), and the returned slice borrows `self`
        // mutably, so it is the only one.
        unsafe { self.inner.reserved_space(self.r, off) }
    }

    /// Copies `src` into the value from offset `off` (bounded by `len`);
    /// returns the bytes copied.
    pub fn write_at(&mut self, mut off: usize, mut src: &[u8]) -> usize {
        let start = off;
        while !src.is_empty() {
            let space = self.space_at(off);
            if space.is_empty() {
                break;
            }
            let n = space.len().min(src.len());
            space[..n].copy_from_slice(&src[..n]);
            off += n;
            src = &src[n..];
        }
        off - start
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.r != arena::NIL {
            self.inner.free_reserved(self.r);
        }
    }
}

impl std::fmt::Debug for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reserved({} bytes)", self.len)
    }
}

impl Store {
    /// Allocates an item for `key` whose value of `nbytes` will be written
    /// into it (see [`Reserved`]). None if it would be too large or memory
    /// is short right now: store the ordinary way then, which answers both.
    pub fn reserve(&self, key: &[u8], nbytes: usize) -> Option<Reserved> {
        let r = self.inner.reserve(key, nbytes)?;
        Some(Reserved {
            inner: self.inner.clone(),
            r,
            len: nbytes,
        })
    }

    /// Stores a filled reservation like [`Store::store`] stores `req` (its
    /// `value` is ignored; set, add, replace and cas modes only), with the
    /// checks made now. The item is freed unless stored.
    pub fn store_reserved(&self, req: &StoreRequest, mut item: Reserved) -> StoreOutcome {
        let r = std::mem::replace(&mut item.r, arena::NIL);
        self.inner.store_reserved(req, r)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.inner
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;
