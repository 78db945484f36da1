//! The slab engine: items in slab chunks, a striped-lock hash table, and a
//! segmented LRU per class. This file holds the item operations; the
//! background threads live in `maintainer.rs`, stats rows in `report.rs`.
//!
//! Locking rules (the memory-safety argument for all unsafe code here):
//! * An item's key/value bytes are read or written only under its key's
//!   stripe lock, or before the item is published (fresh chunk).
//! * An item is freed only while holding its stripe lock *and* its class
//!   lock; LRU/free-list links and the FREE/LINKED bits change only under
//!   the class lock. So a LINKED item seen under the class lock has a
//!   stable key, and an item found in the hash table under the stripe lock
//!   cannot be freed underneath the holder.
//! * Lock order: stripe -> class -> page pool. Anyone holding a class lock
//!   takes stripes only with `try_lock` (skipping busy items), so there is
//!   no cycle. A thread may pass the stripe it already holds (`held`).
//! * A reserved item (`reserve`: allocated, not yet linked; a connection
//!   reads a large data block straight into it, across event-loop turns)
//!   belongs to its owner alone: only the owner writes its value bytes, with
//!   no lock. It is in no hash chain and no LRU, so lookups, LRU pulls,
//!   evictions, the crawler and cachedump cannot reach it; the page mover
//!   (`evacuate`) skips every chunk that is neither FREE nor LINKED (and
//!   the DATA pieces of such a head), so a page holding one stays in its
//!   class this time. The owner then links it under the stripe lock
//!   (`store_reserved`, checks made at that moment) or frees it with the
//!   class lock alone (`free_reserved`: nobody else can reach it).
//! * Reads never take a class lock: a hit sets FETCHED/ACTIVE bits and the
//!   access time with relaxed atomics; the maintainer acts on them later.

use super::arena::{Arena, Ref, NIL};
use super::hash::hash_key;
use super::hashtable::{HashTable, StripeGuard};
use super::item::{bits, Chunk, Layout, COLD, HOT, TEMP, WARM};
use super::slab::{build_classes, chunk_ref, piece_capacity, ClassInfo, ClassState};
use super::*;
use crate::clock::{self, is_expired};
use crossbeam::utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};

/// Items examined at an LRU tail per pull (memcached walks 5).
const TAIL_TRIES: usize = 5;

/// CAS ids a thread reserves from the global counter at a time.
const CAS_BLOCK: u64 = 1024;

/// Pages of a class a page move looks at to find the emptiest.
const PAGE_SAMPLE: usize = 16;

/// Distinguishes stores in one process (tests run many), so a thread's
/// reserved CAS block is only used for the store it came from.
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's CAS block: (store id, next id, end exclusive).
    static CAS_BLOCK_CACHE: std::cell::Cell<(u64, u64, u64)> =
        const { std::cell::Cell::new((0, 0, 0)) };
}

/// Why an item is no longer live.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dead {
    Expired,
    Flushed,
}

/// Global page accounting.
pub(crate) struct PagePool {
    /// First page index handed out ([`Arena::first_page`]).
    pub first: u32,
    /// Next never-used page index.
    pub next_new: u32,
    /// Pages that may be taken from the arena in total (`-m`).
    pub limit: u32,
    /// Pages given back by classes (already resident), reused first.
    pub free: Vec<u32>,
    /// Pages handed back to the OS after `cache_memlimit` shrank the limit
    /// (like memcached freeing pages above its limit); reused before new
    /// ones once the limit allows.
    pub released: Vec<u32>,
}

impl PagePool {
    /// Pages holding memory: taken from the arena and not released.
    pub fn malloced(&self) -> u32 {
        self.next_new - self.first - self.released.len() as u32
    }
}

pub(crate) struct Inner {
    pub cfg: StoreConfig,
    pub arena: Arena,
    pub lay: Layout,
    pub classes: Vec<ClassInfo>,
    /// The class for each item size up to `CLASS_LUT_MAX`, by size / 8
    /// rounded up (0: none, chain it): what `class_for` answers without a
    /// search, for every small set.
    class_lut: Box<[u8]>,
    pub cstate: Vec<CachePadded<Mutex<ClassState>>>,
    pub pool: Mutex<PagePool>,
    /// Owner class of each page (0 = none).
    pub page_class: Box<[AtomicU8]>,
    pub ht: HashTable,
    /// Global CAS counter: every id handed out (in per-thread blocks) is at most this.
    pub cas: AtomicU64,
    /// This store's id for the per-thread CAS blocks.
    id: u64,
    /// Delayed flush: items last accessed before this time are dead once it passes.
    pub flush_at: AtomicU32,
    /// Immediate flush (with CAS on): items whose CAS is at most this are
    /// dead, as memcached's `oldest_cas`. Reaped lazily and by the crawler.
    pub flush_cas: AtomicU64,
    /// The crawler thread, woken after a flush.
    pub crawler: std::sync::OnceLock<std::thread::Thread>,
    /// When the last immediate `flush_all` happened (the crawler reclaims
    /// its items a short grace period later).
    pub flushed_at: Mutex<Option<std::time::Instant>>,
    pub get_expired: AtomicU64,
    pub get_flushed: AtomicU64,
    pub slabs_moved: AtomicU64,
    /// Page moves: live items moved to a free chunk outside the page
    /// (memcached's `slab_reassign_rescues`), evicted for want of one
    /// (`slab_reassign_evictions_nomem`), and moves given up on a busy
    /// item (`slab_reassign_busy_items`).
    pub reassign_rescues: AtomicU64,
    /// Pieces of chained items moved (`slab_reassign_chunk_rescues`).
    pub reassign_chunk_rescues: AtomicU64,
    pub reassign_evictions_nomem: AtomicU64,
    pub reassign_busy_items: AtomicU64,
    pub automove: AtomicU32,
    /// Automove hysteresis: (candidate destination class, checks in a row).
    pub automove_streak: Mutex<(usize, u32)>,
    pub limit_bytes: AtomicU64,
    pub stop: AtomicBool,
    pub reassign_running: AtomicBool,
    pub crawler_running: AtomicBool,
    /// An item with a TTL was stored since the crawler last looked.
    pub ttl_seen: AtomicBool,
    /// A flush happened since the crawler last looked.
    pub flush_pending: AtomicBool,
    pub hot_pct: u32,
    pub warm_pct: u32,
}

/// A read-only view of an item while the store holds its lock for the caller.
pub struct ItemView<'a> {
    pub key: &'a [u8],
    pub meta: ItemMeta,
    /// Slab class of the item (of its head chunk when chained).
    class: u8,
    first: &'a [u8],
    next: Ref,
    len: usize,
    arena: &'a Arena,
}

/// Iterator over the pieces of a value (cheap to clone: a walk can restart).
#[derive(Clone)]
pub struct ValueParts<'a> {
    first: Option<&'a [u8]>,
    next: Ref,
    arena: &'a Arena,
}

impl<'a> Iterator for ValueParts<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(f) = self.first.take() {
            return Some(f);
        }
        if self.next == NIL {
            return None;
        }
        let c = Chunk::new(self.arena, self.next);
        let n = c.hdr().nbytes.load(Relaxed) as usize;
        self.next = c.hdr().next.load(Relaxed);
        // SAFETY: the view exists only inside `get`, under the item's stripe
        // lock, so the chain is allocated and not being written.
        Some(unsafe { c.bytes(super::item::HDR, n) })
    }
}

impl<'a> ItemView<'a> {
    pub fn value_len(&self) -> usize {
        self.len
    }
    /// The item's slab class (the per-class counters of `stats slabs`).
    pub fn class(&self) -> usize {
        usize::from(self.class)
    }
    /// The value as contiguous pieces (one for small items, several for chained ones).
    pub fn value_parts(&self) -> ValueParts<'a> {
        ValueParts {
            first: Some(self.first),
            next: self.next,
            arena: self.arena,
        }
    }
    pub fn append_value_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        for p in self.value_parts() {
            out.extend_from_slice(p);
        }
    }
}

/// Item sizes whose class `class_for` looks up in a table (2 KB of it).
const CLASS_LUT_MAX: usize = 16 * 1024;

/// Smallest class of `classes` whose chunks hold `total` bytes, or None.
fn search_class(classes: &[ClassInfo], total: usize) -> Option<usize> {
    let i = classes[1..].partition_point(|c| c.size < total) + 1;
    (i < classes.len()).then_some(i)
}

/// Where the bytes of a new value come from (new data or an old item's parts).
type Sources<'a> = [&'a [u8]];

impl Inner {
    pub fn new(cfg: StoreConfig) -> Inner {
        let page_size = cfg.item_size_max.max(1 << 20);
        let chunk_max = cfg.slab_chunk_max.clamp(1024, page_size);
        let lay = Layout {
            cas_len: if cfg.use_cas { 8 } else { 0 },
        };
        let arena = Arena::new(page_size, cfg.huge_pages)
            .expect("reserve address space for the slab arena");
        let classes = build_classes(
            lay.key_off(),
            cfg.chunk_min,
            cfg.growth_factor,
            chunk_max,
            page_size,
        );
        let max_pages = arena.max_pages();
        let limit = Self::pages_for(cfg.memory_limit, page_size, arena.usable_pages());
        // Class sizes are multiples of 8, so every size in one 8-byte step
        // has the same class.
        let class_lut = (0..=CLASS_LUT_MAX / 8)
            .map(|i| search_class(&classes, i * 8).unwrap_or(0) as u8)
            .collect();
        Inner {
            lay,
            class_lut,
            cstate: (0..classes.len())
                .map(|_| CachePadded::new(Mutex::new(ClassState::default())))
                .collect(),
            classes,
            pool: Mutex::new(PagePool {
                first: arena.first_page(),
                next_new: arena.first_page(),
                limit,
                free: Vec::new(),
                released: Vec::new(),
            }),
            page_class: (0..max_pages).map(|_| AtomicU8::new(0)).collect(),
            ht: HashTable::new(cfg.hashpower),
            cas: AtomicU64::new(0),
            id: NEXT_STORE_ID.fetch_add(1, Relaxed),
            flush_at: AtomicU32::new(0),
            flush_cas: AtomicU64::new(0),
            crawler: std::sync::OnceLock::new(),
            flushed_at: Mutex::new(None),
            get_expired: AtomicU64::new(0),
            get_flushed: AtomicU64::new(0),
            slabs_moved: AtomicU64::new(0),
            reassign_rescues: AtomicU64::new(0),
            reassign_chunk_rescues: AtomicU64::new(0),
            reassign_evictions_nomem: AtomicU64::new(0),
            reassign_busy_items: AtomicU64::new(0),
            automove: AtomicU32::new(cfg.slab_automove),
            automove_streak: Mutex::new((0, 0)),
            limit_bytes: AtomicU64::new(cfg.memory_limit as u64),
            stop: AtomicBool::new(false),
            reassign_running: AtomicBool::new(false),
            crawler_running: AtomicBool::new(false),
            ttl_seen: AtomicBool::new(false),
            flush_pending: AtomicBool::new(false),
            hot_pct: cfg.hot_lru_pct.min(80),
            warm_pct: cfg.warm_lru_pct.min(80),
            arena,
            cfg,
        }
    }

    fn pages_for(bytes: usize, page_size: usize, usable: usize) -> u32 {
        (bytes / page_size).clamp(1, usable.max(1)) as u32
    }

    pub fn set_limit(&self, bytes: usize) {
        let l = Self::pages_for(bytes, self.arena.page_size(), self.arena.usable_pages());
        let mut pool = self.pool.lock();
        pool.limit = l;
        self.release_excess(&mut pool);
        drop(pool);
        self.limit_bytes.store(bytes as u64, Relaxed);
    }

    /// Is more memory held than the limit allows (after `cache_memlimit`
    /// lowered it)? The maintainer then empties pages to release.
    pub fn over_limit(&self) -> bool {
        let pool = self.pool.lock();
        pool.malloced() > pool.limit
    }

    /// Gives pooled pages back to the OS while more are held than the limit
    /// allows. Pool lock held; pooled pages belong to no class, so nothing
    /// reads them.
    fn release_excess(&self, pool: &mut PagePool) {
        while pool.malloced() > pool.limit {
            let Some(page) = pool.free.pop() else { break };
            // SAFETY: one whole page inside the arena's private anonymous
            // mapping; it stays mapped (reads see zeroes until reused).
            unsafe {
                libc::madvise(
                    self.arena.page_ptr(page) as *mut libc::c_void,
                    self.arena.page_size(),
                    libc::MADV_DONTNEED,
                );
            }
            pool.released.push(page);
        }
    }

    #[inline]
    pub fn chunk(&self, r: Ref) -> Chunk<'_> {
        Chunk::new(&self.arena, r)
    }

    pub fn largest_class(&self) -> usize {
        self.classes.len() - 1
    }

    /// The class an item of this key and value length is stored in (the
    /// head's, for a chained item), or None when it exceeds `-I`.
    pub fn class_of_size(&self, nkey: usize, nbytes: usize) -> Option<usize> {
        let total = self.lay.total(nkey, nbytes);
        if total > self.cfg.item_size_max {
            return None;
        }
        Some(self.class_for(total).unwrap_or(self.largest_class()))
    }

    /// Smallest class whose chunks hold `total` bytes, or None (chain it).
    #[inline]
    fn class_for(&self, total: usize) -> Option<usize> {
        match self.class_lut.get(total.div_ceil(8)) {
            Some(&c) => (c != 0).then_some(usize::from(c)),
            None => search_class(&self.classes, total),
        }
    }

    #[inline]
    pub fn lock_class(&self, cls: usize) -> MutexGuard<'_, ClassState> {
        self.cstate[cls].lock()
    }

    /// A fresh CAS id. Ids come from a per-thread block reserved from the
    /// global counter (`cas`), so stores on different workers do not bounce
    /// one cache line; they stay unique server-wide. The id is above `floor`
    /// (the replaced item's CAS, so a key's CAS only grows, which meta's
    /// invalidation compares rely on) and above `flush_cas` (else a store
    /// after `flush_all` would be born flushed); a block that cannot satisfy
    /// that is dropped for a fresh one, which is above every id handed out.
    pub fn next_cas(&self, floor: u64) -> u64 {
        if !self.cfg.use_cas {
            return 0;
        }
        let floor = floor.max(self.flush_cas.load(Relaxed));
        CAS_BLOCK_CACHE.with(|b| {
            let (store, next, end) = b.get();
            if store == self.id && next < end && next > floor {
                b.set((store, next + 1, end));
                return next;
            }
            let first = self.cas.fetch_add(CAS_BLOCK, Relaxed) + 1;
            b.set((self.id, first + 1, first + CAS_BLOCK));
            first
        })
    }

    /// With -C no item has a CAS, so a compare never matches (memcached: EXISTS).
    #[inline]
    fn cas_matches(&self, c: Chunk, given: u64) -> bool {
        self.cfg.use_cas && c.cas(&self.lay) == given
    }

    /// Is this linked item dead at `now`?
    #[inline]
    pub fn dead(&self, c: Chunk, now: RelTime) -> Option<Dead> {
        let h = c.hdr();
        if is_expired(h.exptime.load(Relaxed), now) {
            return Some(Dead::Expired);
        }
        let fa = self.flush_at.load(Relaxed);
        if fa != 0 && fa <= now && h.time.load(Relaxed) < fa {
            return Some(Dead::Flushed);
        }
        let fc = self.flush_cas.load(Relaxed);
        if fc != 0 && c.cas(&self.lay) <= fc {
            return Some(Dead::Flushed);
        }
        None
    }

    /// Total size the item accounts for (`bytes`, `mem_requested`).
    #[inline]
    pub fn item_total(&self, c: Chunk) -> u64 {
        let h = c.hdr();
        self.lay.total(
            h.nkey.load(Relaxed) as usize,
            h.nbytes.load(Relaxed) as usize,
        ) as u64
    }

    /// Frees an item (and its chain). The item must already be out of the
    /// hash table; caller holds its stripe lock and its class lock (`cs`).
    pub fn free_locked(&self, cs: &mut ClassState, r: Ref) {
        let c = self.chunk(r);
        let h = c.hdr();
        if h.has(bits::LINKED) {
            cs.lru[h.lru.load(Relaxed) as usize].unlink(&self.arena, r);
            cs.requested -= self.item_total(c);
            h.clear(bits::LINKED);
        }
        if h.has(bits::CHAINED) {
            for p in c.pieces(&self.lay) {
                cs.push_free(&self.arena, p.r);
            }
        }
        cs.push_free(&self.arena, r);
    }

    /// Unlinks a live or dead item from hash and LRU and frees it. Caller holds
    /// the stripe lock; takes the class lock.
    pub fn unlink_free(&self, hv: u64, r: Ref) {
        self.ht.remove(&self.arena, hv, r);
        let cls = self.chunk(r).hdr().clsid.load(Relaxed) as usize;
        let mut cs = self.lock_class(cls);
        self.free_locked(&mut cs, r);
    }

    /// Unlinks a dead item found by a lookup and counts why. `replacing`: a
    /// store is about to take the key's place. memcached counts a flushed
    /// item as reclaimed there only when its allocation finds it at the COLD
    /// tail: always COLD without the LRU maintainer (`-o no_modern`), else
    /// only once it has aged out of HOT/WARM.
    fn reap(&self, hv: u64, r: Ref, why: Dead, replacing: bool) {
        let c = self.chunk(r);
        let fetched = c.hdr().has(bits::FETCHED);
        let replacing =
            replacing && (!self.cfg.lru_maintainer || c.hdr().lru.load(Relaxed) == COLD);
        self.ht.remove(&self.arena, hv, r);
        let cls = c.hdr().clsid.load(Relaxed) as usize;
        let mut cs = self.lock_class(cls);
        match why {
            Dead::Expired => {
                cs.c.reclaimed += 1;
                if !fetched {
                    cs.c.expired_unfetched += 1;
                }
            }
            Dead::Flushed if replacing => {
                cs.c.reclaimed += 1;
                if !fetched {
                    cs.c.expired_unfetched += 1;
                }
            }
            Dead::Flushed => {}
        }
        self.free_locked(&mut cs, r);
    }

    /// Looks up a live item; reaps it if dead. Caller holds the stripe.
    fn find_live(
        &self,
        hv: u64,
        key: &[u8],
        now: RelTime,
        count_get: bool,
        replacing: bool,
    ) -> Ref {
        let r = self.ht.find(&self.arena, &self.lay, hv, key);
        if r == NIL {
            return NIL;
        }
        if let Some(why) = self.dead(self.chunk(r), now) {
            if count_get {
                match why {
                    Dead::Expired => self.get_expired.fetch_add(1, Relaxed),
                    Dead::Flushed => self.get_flushed.fetch_add(1, Relaxed),
                };
            }
            self.reap(hv, r, why, replacing);
            return NIL;
        }
        r
    }

    /// Attaches a page from the pool or the arena to `cls`. Class lock held.
    fn grab_page(&self, cls: usize, cs: &mut ClassState) -> bool {
        let page = {
            let mut pool = self.pool.lock();
            if let Some(p) = pool.free.pop() {
                p
            } else if pool.malloced() >= pool.limit {
                return false;
            } else if let Some(p) = pool.released.pop() {
                p
            } else if (pool.next_new as usize) < self.arena.max_pages() {
                pool.next_new += 1;
                pool.next_new - 1
            } else {
                return false;
            }
        };
        self.page_class[page as usize].store(cls as u8, Relaxed);
        cs.add_page(&self.arena, self.classes[cls], cls as u8, page);
        true
    }

    /// Balances HOT/WARM/COLD of a class: overflow of HOT and WARM flows to
    /// COLD (active items go to / stay in WARM), active COLD tail items move
    /// to WARM. Pure list moves: no stripe locks needed. Returns moves done.
    pub fn balance(&self, cs: &mut ClassState, max: usize) -> usize {
        let a = &self.arena;
        let total = (cs.lru[HOT as usize].count
            + cs.lru[WARM as usize].count
            + cs.lru[COLD as usize].count) as u64;
        let hot_limit = (total * self.hot_pct as u64 / 100) as u32;
        let warm_limit = (total * self.warm_pct as u64 / 100) as u32;
        let mut moves = 0;
        while cs.lru[HOT as usize].count > hot_limit.max(1) && moves < max {
            let r = cs.lru[HOT as usize].tail;
            let h = self.chunk(r).hdr();
            cs.lru[HOT as usize].unlink(a, r);
            if h.has(bits::ACTIVE) {
                h.clear(bits::ACTIVE);
                h.lru.store(WARM, Relaxed);
                cs.lru[WARM as usize].push_head(a, r);
                cs.c.moves_to_warm += 1;
            } else {
                h.lru.store(COLD, Relaxed);
                cs.lru[COLD as usize].push_head(a, r);
                cs.c.moves_to_cold += 1;
            }
            moves += 1;
        }
        let mut juggles = 0;
        while cs.lru[WARM as usize].count > warm_limit.max(1) && moves < max {
            let r = cs.lru[WARM as usize].tail;
            let h = self.chunk(r).hdr();
            cs.lru[WARM as usize].unlink(a, r);
            if h.has(bits::ACTIVE) && juggles < cs.lru[WARM as usize].count {
                h.clear(bits::ACTIVE);
                cs.lru[WARM as usize].push_head(a, r);
                cs.c.moves_within_lru += 1;
                juggles += 1;
            } else {
                h.lru.store(COLD, Relaxed);
                cs.lru[COLD as usize].push_head(a, r);
                cs.c.moves_to_cold += 1;
            }
            moves += 1;
        }
        // Active items at the COLD tail go back to WARM.
        let mut r = cs.lru[COLD as usize].tail;
        let mut seen = 0;
        while r != NIL && seen < 8 && moves < max {
            let h = self.chunk(r).hdr();
            let prev = h.prev.load(Relaxed);
            if h.has(bits::ACTIVE) {
                h.clear(bits::ACTIVE);
                cs.lru[COLD as usize].unlink(a, r);
                h.lru.store(WARM, Relaxed);
                cs.lru[WARM as usize].push_head(a, r);
                cs.c.moves_to_warm += 1;
                moves += 1;
            } else {
                seen += 1;
            }
            r = prev;
        }
        cs.c.juggles += moves as u64;
        moves
    }

    /// Moves up to `max` items from the HOT tail (or WARM when HOT is empty)
    /// to COLD regardless of segment limits, so eviction has candidates;
    /// active HOT items go to WARM instead.
    fn refill_cold(&self, cs: &mut ClassState, max: usize) {
        let a = &self.arena;
        for _ in 0..max {
            let from = if cs.lru[HOT as usize].count > 0 {
                HOT
            } else {
                WARM
            };
            let r = cs.lru[from as usize].tail;
            if r == NIL {
                return;
            }
            let h = self.chunk(r).hdr();
            cs.lru[from as usize].unlink(a, r);
            if from == HOT && h.has(bits::ACTIVE) {
                h.clear(bits::ACTIVE);
                h.lru.store(WARM, Relaxed);
                cs.lru[WARM as usize].push_head(a, r);
                cs.c.moves_to_warm += 1;
                continue;
            }
            h.lru.store(COLD, Relaxed);
            cs.lru[COLD as usize].push_head(a, r);
            cs.c.moves_to_cold += 1;
            if cs.lru[COLD as usize].count >= 8 {
                return;
            }
        }
    }

    /// Frees one item from the tail of `seg`: a dead one always, a live one
    /// only when `evict`. Active items found on the way move to WARM unless
    /// `force` (last resort when every tail item is active).
    /// Skips items whose stripe is busy and the `protect`ed item.
    #[allow(clippy::too_many_arguments)]
    pub fn pull_tail(
        &self,
        cs: &mut ClassState,
        seg: u8,
        held: Option<usize>,
        protect: Ref,
        evict: bool,
        now: RelTime,
        force: bool,
    ) -> bool {
        let a = &self.arena;
        let mut r = cs.lru[seg as usize].tail;
        let mut tries = 0;
        while r != NIL && tries < TAIL_TRIES {
            tries += 1;
            let c = self.chunk(r);
            let h = c.hdr();
            let prev = h.prev.load(Relaxed);
            if r == protect {
                r = prev;
                continue;
            }
            let hv = hash_key(c.key(&self.lay));
            let s = self.ht.stripe_of(hv);
            let _guard: Option<StripeGuard> = if held == Some(s) {
                None
            } else {
                match self.ht.try_lock(s) {
                    Some(g) => Some(g),
                    None => {
                        r = prev;
                        continue;
                    }
                }
            };
            if let Some(why) = self.dead(c, now) {
                if why == Dead::Expired {
                    cs.c.reclaimed += 1;
                    if !h.has(bits::FETCHED) {
                        cs.c.expired_unfetched += 1;
                    }
                }
                self.ht.remove(a, hv, r);
                self.free_locked(cs, r);
                return true;
            }
            if seg != TEMP && h.has(bits::ACTIVE) && !force {
                // Active items are kept: back to WARM instead of out.
                h.clear(bits::ACTIVE);
                cs.lru[seg as usize].unlink(a, r);
                h.lru.store(WARM, Relaxed);
                cs.lru[WARM as usize].push_head(a, r);
                cs.c.moves_to_warm += 1;
                r = prev;
                continue;
            }
            if !evict || seg == TEMP {
                r = prev;
                continue;
            }
            cs.c.evicted += 1;
            cs.c.evicted_time = now.saturating_sub(h.time.load(Relaxed));
            if !h.has(bits::FETCHED) {
                cs.c.evicted_unfetched += 1;
            }
            if h.has(bits::ACTIVE) {
                cs.c.evicted_active += 1;
            }
            self.ht.remove(a, hv, r);
            self.free_locked(cs, r);
            return true;
        }
        false
    }

    /// One free chunk for an item of class `cls`: from the class itself
    /// (free list, a new page, reclaiming or evicting), else borrowed from the
    /// nearest larger class that has pages (a fine class with no page of its
    /// own), else from a page taken from another class.
    fn alloc_chunk(&self, cls: usize, held: Option<usize>, protect: Ref) -> Option<Ref> {
        // Failures here are mostly transient (tail items whose stripes other
        // threads hold, chunks of items being written), so retry a few
        // times before reporting out of memory.
        let near = (self.classes[cls].size as f64 * self.cfg.growth_factor.max(1.25)) as usize;
        let reassign = self.cfg.slab_reassign;
        for round in 0..16 {
            if let Some(r) = self.alloc_in(cls, held, protect) {
                return Some(r);
            }
            // Borrow from a class at most one `-f` step larger.
            if let Some(r) = self.borrow(cls, held, protect, near) {
                return Some(r);
            }
            // A page nobody uses, or one from a class with several.
            if reassign && self.steal_page(cls, held, protect, true) {
                continue;
            }
            // Every class is down to its last page (many classes, small -m):
            // borrow from any larger class rather than shuffle pages.
            if let Some(r) = self.borrow(cls, held, protect, usize::MAX) {
                return Some(r);
            }
            if reassign && self.steal_page(cls, held, protect, false) {
                continue;
            }
            if round >= 2 && !self.cfg.evict_to_free {
                break;
            }
            if round < 8 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
        self.lock_class(cls).c.outofmemory += 1;
        None
    }

    /// A chunk from one of the nearest larger classes (chunk size up to
    /// `max_size`) that have pages.
    fn borrow(
        &self,
        cls: usize,
        held: Option<usize>,
        protect: Ref,
        max_size: usize,
    ) -> Option<Ref> {
        let larger = (cls + 1..self.classes.len())
            .take_while(|&c| self.classes[c].size <= max_size)
            .filter(|&c| !self.cstate[c].lock().pages.is_empty())
            .take(3);
        for c2 in larger {
            if let Some(r) = self.alloc_in(c2, held, protect) {
                return Some(r);
            }
        }
        None
    }

    /// A chunk of exactly class `cls`, or None when the class has nothing to
    /// give (no free chunk, no page to take, nothing it may evict).
    fn alloc_in(&self, cls: usize, held: Option<usize>, protect: Ref) -> Option<Ref> {
        let now = clock::now();
        let mut cs = self.lock_class(cls);
        for _ in 0..64 {
            if let Some(r) = cs.pop_free(&self.arena) {
                let h = self.chunk(r).hdr();
                h.clsid.store(cls as u8, Relaxed);
                return Some(r);
            }
            if self.grab_page(cls, &mut cs) {
                continue;
            }
            self.balance(&mut cs, 8);
            let evict = self.cfg.evict_to_free;
            // Expired items anywhere first, then the COLD tail, then the
            // others if COLD is empty; TEMP only gives up expired items.
            if cs.lru[COLD as usize].count < 8 {
                self.refill_cold(&mut cs, 64);
            }
            if self.pull_tail(&mut cs, COLD, held, protect, evict, now, false)
                || self.pull_tail(&mut cs, TEMP, held, protect, false, now, false)
                || self.pull_tail(&mut cs, HOT, held, protect, evict, now, false)
            {
                cs.c.direct_reclaims += 1;
                continue;
            }
            // Everything at the tails was active or busy: evict anyway
            // rather than fail the write.
            if evict
                && (self.pull_tail(&mut cs, COLD, held, protect, true, now, true)
                    || self.pull_tail(&mut cs, HOT, held, protect, true, now, true)
                    || self.pull_tail(&mut cs, WARM, held, protect, true, now, true))
            {
                continue;
            }
            break;
        }
        None
    }

    /// Frees a page of another class into the pool for `dst`: first a page
    /// with no live items, then one from the class with the most pages (if
    /// it has several); unless `cheap`, then the only page of the classes
    /// with the oldest items (many classes and a small `-m`).
    fn steal_page(&self, dst: usize, held: Option<usize>, protect: Ref, cheap: bool) -> bool {
        let now = clock::now();
        // (class, pages, free chunks, age of oldest item)
        let mut rows = Vec::new();
        for cls in 1..self.classes.len() {
            if cls == dst {
                continue;
            }
            let cs = self.lock_class(cls);
            if cs.pages.is_empty() {
                continue;
            }
            let age = [COLD, WARM, HOT, TEMP]
                .iter()
                .map(|&s| cs.lru[s as usize].tail)
                .find(|&r| r != NIL)
                .map(|r| now.saturating_sub(self.chunk(r).hdr().time.load(Relaxed)))
                .unwrap_or(u32::MAX);
            rows.push((cls, cs.pages.len(), cs.free.count as usize, age));
        }
        let per = |c: usize| self.classes[c].per_page;
        let mut order: Vec<(usize, bool)> = Vec::new();
        for r in rows.iter().filter(|r| r.2 >= per(r.0)) {
            order.push((r.0, true));
        }
        if self.cfg.evict_to_free {
            if let Some(r) = rows.iter().filter(|r| r.1 > 1).max_by_key(|r| r.1) {
                order.push((r.0, false));
            }
        }
        if self.cfg.evict_to_free && !cheap {
            // Then any other class, oldest first.
            let mut rest: Vec<_> = rows.iter().collect();
            rest.sort_by_key(|r| std::cmp::Reverse(r.3));
            order.extend(rest.into_iter().map(|r| (r.0, false)));
        }
        order
            .into_iter()
            .take(8)
            .any(|(cls, only_free)| self.move_page_out(cls, held, protect, only_free))
    }

    /// Evacuates one page of `src` into the pool. Live items move to free
    /// chunks elsewhere in the class where there are some (as memcached's
    /// page mover rescues them); with `only_free` none is evicted, so a page
    /// is taken only when its live items all find room (for -M, shrinking
    /// and giving back idle pages: never evict to move).
    pub fn move_page_out(
        &self,
        src: usize,
        held: Option<usize>,
        protect: Ref,
        only_free: bool,
    ) -> bool {
        let mut cs = self.lock_class(src);
        if cs.pages.is_empty() {
            return false;
        }
        let info = self.classes[src];
        // Free chunks in page `p`, or None if an item there is being built
        // (allocated, not linked: it cannot move until its writer is done).
        // FREE and LINKED change only under the class lock, held here.
        let free_in = |p: u32| {
            let mut free = 0;
            for i in 0..info.per_page {
                let r = chunk_ref(&self.arena, p, info.size, i);
                if self.chunk(r).hdr().has(bits::FREE) {
                    free += 1;
                } else if !self.chunk(self.owner_of(r)).hdr().has(bits::LINKED) {
                    return None;
                }
            }
            Some(free)
        };
        let page = if cs.free.count as usize >= info.per_page {
            // Enough free chunks for every item of a page to move: the
            // emptiest of a sample of pages needs the fewest moves (a full
            // scan of a small-item class would hold its lock too long).
            let step = cs.pages.len().div_ceil(PAGE_SAMPLE).max(1);
            cs.pages
                .iter()
                .step_by(step)
                .filter_map(|&p| Some((free_in(p)?, p)))
                .max_by_key(|&(free, _)| free)
                .map(|(_, p)| p)
        } else if only_free {
            return false;
        } else {
            // The page of the oldest item: what eviction would take first.
            let tail = [COLD, HOT, WARM, TEMP]
                .iter()
                .map(|&s| cs.lru[s as usize].tail)
                .find(|&r| r != NIL);
            Some(match tail {
                Some(r) => self.arena.page_of(r),
                None => cs.pages[0],
            })
        };
        let Some(page) = page else { return false };
        if self.evacuate(src, &mut cs, page, held, protect, !only_free) {
            drop(cs);
            let mut pool = self.pool.lock();
            pool.free.push(page);
            self.release_excess(&mut pool);
            drop(pool);
            self.slabs_moved.fetch_add(1, Relaxed);
            true
        } else {
            false
        }
    }

    /// Empties `page` and removes it from the class: each live item moves
    /// to a free chunk outside the page, or is evicted (if `evict`) when
    /// there is none. False, and the page stays, if an item is busy or
    /// cannot move; items already moved or evicted stay so.
    fn evacuate(
        &self,
        cls: usize,
        cs: &mut ClassState,
        page: u32,
        held: Option<usize>,
        protect: Ref,
        evict: bool,
    ) -> bool {
        let info = self.classes[cls];
        let a = &self.arena;
        let now = clock::now();
        // The page's free chunks leave the free list first, so no item is
        // moved into the page being emptied. `off_list[i]`: chunk i is free
        // (FREE set) but on no list.
        let mut off_list = vec![false; info.per_page];
        for (i, off) in off_list.iter_mut().enumerate() {
            let r = chunk_ref(a, page, info.size, i);
            if self.chunk(r).hdr().has(bits::FREE) {
                cs.free.unlink(a, r);
                *off = true;
            }
        }
        let mut emptied = true;
        for i in 0..info.per_page {
            let r = chunk_ref(a, page, info.size, i);
            if self.chunk(r).hdr().has(bits::FREE) {
                continue;
            }
            let owner = self.owner_of(r);
            let oc = self.chunk(owner);
            if owner == protect || !oc.hdr().has(bits::LINKED) {
                // Being built or used by the caller: the page stays, but
                // the rest is cleared so the next move picks another page.
                self.reassign_busy_items.fetch_add(1, Relaxed);
                emptied = false;
                continue;
            }
            let hv = hash_key(oc.key(&self.lay));
            let s = self.ht.stripe_of(hv);
            let _g = if held == Some(s) {
                None
            } else {
                match self.ht.try_lock(s) {
                    Some(g) => Some(g),
                    None => {
                        self.reassign_busy_items.fetch_add(1, Relaxed);
                        emptied = false;
                        continue;
                    }
                }
            };
            let oh = oc.hdr();
            match self.dead(oc, now) {
                Some(Dead::Expired) => {
                    cs.c.reclaimed += 1;
                    if !oh.has(bits::FETCHED) {
                        cs.c.expired_unfetched += 1;
                    }
                }
                Some(Dead::Flushed) => {}
                None => {
                    if let Some(to) = self.pop_outside(cs, page, info.size, &mut off_list) {
                        if owner == r {
                            self.move_item(cs, hv, r, to);
                            self.reassign_rescues.fetch_add(1, Relaxed);
                        } else {
                            self.move_piece(owner, r, to);
                            self.reassign_chunk_rescues.fetch_add(1, Relaxed);
                        }
                        off_list[i] = true;
                        continue;
                    }
                    if !evict {
                        emptied = false;
                        break;
                    }
                    cs.c.slab_evictions += 1;
                    self.reassign_evictions_nomem.fetch_add(1, Relaxed);
                }
            }
            self.ht.remove(a, hv, owner);
            self.free_locked(cs, owner);
        }
        emptied = emptied
            && (0..info.per_page).all(|i| {
                self.chunk(chunk_ref(a, page, info.size, i))
                    .hdr()
                    .has(bits::FREE)
            });
        if !emptied {
            // The page stays in the class: its free chunks go back on the list.
            for (i, _) in off_list.iter().enumerate().filter(|(_, &off)| off) {
                cs.push_free(a, chunk_ref(a, page, info.size, i));
            }
            return false;
        }
        for (i, &off) in off_list.iter().enumerate() {
            let r = chunk_ref(a, page, info.size, i);
            if !off {
                cs.free.unlink(a, r);
            }
            self.chunk(r).hdr().bits.store(0, Relaxed);
        }
        cs.pages.retain(|&p| p != page);
        self.page_class[page as usize].store(0, Relaxed);
        true
    }

    /// The item an allocated chunk belongs to: itself, or for a piece of a
    /// chained item its head.
    fn owner_of(&self, r: Ref) -> Ref {
        let h = self.chunk(r).hdr();
        if h.has(bits::DATA) {
            h.hnext.load(Relaxed)
        } else {
            r
        }
    }

    /// A free chunk of the class outside `page`. Chunks of `page` that
    /// were freed during its evacuation are met first (frees push at the
    /// head); they leave the list and are marked in `off_list`.
    fn pop_outside(
        &self,
        cs: &mut ClassState,
        page: u32,
        size: usize,
        off_list: &mut [bool],
    ) -> Option<Ref> {
        loop {
            let r = cs.pop_free(&self.arena)?;
            if self.arena.page_of(r) != page {
                return Some(r);
            }
            self.chunk(r).hdr().bits.store(bits::FREE, Relaxed);
            let off = self.arena.ptr(r) as usize - self.arena.page_ptr(page) as usize;
            off_list[off / size] = true;
        }
    }

    /// Moves a live item (or the head of a chained one) from chunk `from`
    /// to the free chunk `to` of the same class, keeping its place in its
    /// LRU; a chained item's pieces then point back at the new head.
    /// Caller holds its stripe lock and the class lock (`cs`).
    fn move_item(&self, cs: &mut ClassState, hv: u64, from: Ref, to: Ref) {
        let a = &self.arena;
        let fc = self.chunk(from);
        let chained = fc.hdr().has(bits::CHAINED);
        let len = if chained {
            self.classes[fc.hdr().clsid.load(Relaxed) as usize].size
        } else {
            self.item_total(fc) as usize
        };
        // SAFETY: both chunks belong to this class (chunk size >= len),
        // are distinct, and nobody else touches either: `from` is guarded
        // by the locks the caller holds and `to` is on no list.
        unsafe { std::ptr::copy_nonoverlapping(a.ptr(from), a.ptr(to), len) };
        let seg = fc.hdr().lru.load(Relaxed) as usize;
        cs.lru[seg].replace(a, from, to);
        self.ht.replace(a, hv, from, to);
        if chained {
            for p in self.chunk(to).pieces(&self.lay) {
                p.hdr().hnext.store(to, Relaxed);
            }
        }
        fc.hdr().bits.store(bits::FREE, Relaxed);
    }

    /// Moves one piece of the chained item headed at `head` from chunk
    /// `from` to the free chunk `to` (same class), relinking the chain at
    /// the piece before it. Caller holds the item's stripe lock and the
    /// class lock.
    fn move_piece(&self, head: Ref, from: Ref, to: Ref) {
        let a = &self.arena;
        let fc = self.chunk(from);
        let len = super::item::HDR + fc.hdr().nbytes.load(Relaxed) as usize;
        // SAFETY: as in `move_item`; a piece is its header and data.
        unsafe { std::ptr::copy_nonoverlapping(a.ptr(from), a.ptr(to), len) };
        let hc = self.chunk(head);
        if hc.chain_next(&self.lay) == from {
            hc.set_chain_next(&self.lay, to);
        } else if let Some(prev) = hc
            .pieces(&self.lay)
            .find(|p| p.hdr().next.load(Relaxed) == from)
        {
            prev.hdr().next.store(to, Relaxed);
        }
        fc.hdr().bits.store(bits::FREE, Relaxed);
    }

    /// Allocates an unlinked item for `key` with a value of `nbytes`, chained
    /// when it exceeds the largest chunk. Header fields other than key/length
    /// are left for the caller.
    fn alloc_item(
        &self,
        key: &[u8],
        nbytes: usize,
        held: Option<usize>,
        protect: Ref,
    ) -> Option<Ref> {
        let nkey = key.len();
        let total = self.lay.total(nkey, nbytes);
        let r = if let Some(cls) = self.class_for(total) {
            self.alloc_chunk(cls, held, protect)?
        } else {
            let big = self.largest_class();
            let size = self.classes[big].size;
            let head_cap = size - self.lay.chain_data_off(nkey);
            let cap = piece_capacity(size);
            let rest = nbytes.saturating_sub(head_cap);
            let pieces = rest.div_ceil(cap);
            let head = self.alloc_chunk(big, held, protect)?;
            let mut got: Vec<Ref> = Vec::with_capacity(pieces);
            for _ in 0..pieces {
                match self.alloc_chunk(big, held, protect) {
                    Some(p) => got.push(p),
                    None => {
                        let mut cs = self.lock_class(big);
                        cs.push_free(&self.arena, head);
                        for p in got {
                            cs.push_free(&self.arena, p);
                        }
                        return None;
                    }
                }
            }
            let hh = self.chunk(head).hdr();
            hh.nkey.store(nkey as u8, Relaxed);
            hh.set(bits::CHAINED);
            let mut left = rest;
            for (i, &p) in got.iter().enumerate() {
                let ph = self.chunk(p).hdr();
                ph.bits.store(bits::DATA, Relaxed);
                ph.hnext.store(head, Relaxed);
                ph.next
                    .store(got.get(i + 1).copied().unwrap_or(NIL), Relaxed);
                let n = left.min(cap);
                ph.nbytes.store(n as u32, Relaxed);
                left -= n;
            }
            self.chunk(head)
                .set_chain_next(&self.lay, got.first().copied().unwrap_or(NIL));
            head
        };
        let c = self.chunk(r);
        let h = c.hdr();
        h.nkey.store(nkey as u8, Relaxed);
        h.nbytes.store(nbytes as u32, Relaxed);
        // SAFETY: the chunk is fresh and unpublished; the key fits (class
        // sizes include header + cas + key + value, heads include the key).
        unsafe { c.bytes_mut(self.lay.key_off(), nkey).copy_from_slice(key) };
        Some(r)
    }

    /// Copies `src` pieces into the value area of a fresh item.
    fn write_value(&self, r: Ref, src: &Sources) {
        let c = self.chunk(r);
        let h = c.hdr();
        let nkey = h.nkey.load(Relaxed) as usize;
        if !h.has(bits::CHAINED) {
            // One destination range: no bookkeeping (and no allocation).
            let mut off = self.lay.val_off(nkey);
            for s in src {
                // SAFETY: fresh unpublished chunk; the sources add up to
                // `nbytes`, which `alloc_item` sized the chunk for.
                unsafe { c.bytes_mut(off, s.len()).copy_from_slice(s) };
                off += s.len();
            }
            return;
        }
        // Destination pieces: (chunk, offset, len).
        let mut dst: Vec<(Ref, usize, usize)> = Vec::new();
        let total = h.nbytes.load(Relaxed) as usize;
        let size = self.classes[self.largest_class()].size;
        let off = self.lay.chain_data_off(nkey);
        dst.push((r, off, total.min(size - off)));
        for p in c.pieces(&self.lay) {
            dst.push((p.r, super::item::HDR, p.hdr().nbytes.load(Relaxed) as usize));
        }
        let mut di = 0;
        let mut doff = 0;
        for s in src {
            let mut s: &[u8] = s;
            while !s.is_empty() {
                let (dr, base, dlen) = dst[di];
                let n = s.len().min(dlen - doff);
                // SAFETY: fresh unpublished chunk; range within the piece.
                unsafe {
                    self.chunk(dr)
                        .bytes_mut(base + doff, n)
                        .copy_from_slice(&s[..n]);
                }
                s = &s[n..];
                doff += n;
                if doff == dlen {
                    di += 1;
                    doff = 0;
                }
            }
        }
    }

    /// The value pieces of a linked item (caller holds its stripe lock).
    fn value_parts(&self, r: Ref) -> (&[u8], Ref) {
        let c = self.chunk(r);
        let h = c.hdr();
        let nkey = h.nkey.load(Relaxed) as usize;
        let total = h.nbytes.load(Relaxed) as usize;
        if h.has(bits::CHAINED) {
            let size = self.classes[self.largest_class()].size;
            let off = self.lay.chain_data_off(nkey);
            // SAFETY: stripe lock held by caller; range inside the head chunk.
            let first = unsafe { c.bytes(off, total.min(size - off)) };
            (first, c.chain_next(&self.lay))
        } else {
            // SAFETY: as above.
            (unsafe { c.bytes(self.lay.val_off(nkey), total) }, NIL)
        }
    }

    fn parts_vec(&self, r: Ref) -> Vec<&[u8]> {
        let (first, next) = self.value_parts(r);
        ValueParts {
            first: Some(first),
            next,
            arena: &self.arena,
        }
        .collect()
    }

    /// Links a fully written fresh item, replacing `old` if given. Caller
    /// holds the stripe lock.
    fn link(&self, hv: u64, r: Ref, old: Ref, now: RelTime) {
        let c = self.chunk(r);
        let h = c.hdr();
        if old != NIL {
            self.ht.replace(&self.arena, hv, old, r);
            let ocls = self.chunk(old).hdr().clsid.load(Relaxed) as usize;
            let mut cs = self.lock_class(ocls);
            self.free_locked(&mut cs, old);
        } else {
            self.ht.insert(&self.arena, hv, r);
        }
        let seg = self.segment_for(h.exptime.load(Relaxed), now);
        h.lru.store(seg, Relaxed);
        let cls = h.clsid.load(Relaxed) as usize;
        let mut cs = self.lock_class(cls);
        cs.lru[seg as usize].push_head(&self.arena, r);
        cs.requested += self.item_total(c);
        cs.c.total_items += 1;
        h.set(bits::LINKED);
    }

    /// Can a new value of `nbytes` replace linked item `c`'s value inside
    /// its chunk? Only for an unchained item whose class is exactly the one a
    /// fresh item would get, so overwriting never wastes memory.
    #[inline]
    fn fits_in_place(&self, c: Chunk, nbytes: usize) -> bool {
        let h = c.hdr();
        if h.has(bits::CHAINED) {
            return false;
        }
        let total = self.lay.total(h.nkey.load(Relaxed) as usize, nbytes);
        let cls = h.clsid.load(Relaxed) as usize;
        // Same as `class_for(total) == Some(cls)` without the search.
        cls > 0 && self.classes[cls].size >= total && self.classes[cls - 1].size < total
    }

    /// Stores a new value into linked item `r` (same key) in place, as if a
    /// fresh item had replaced it: new value, flags, times and CAS, bits
    /// reset to `set`, moved to the head of HOT (or TEMP). This skips the
    /// alloc, the free, the hash-table replace and two of the three class
    /// lock acquisitions of a replacing store.
    ///
    /// Caller holds `r`'s stripe lock. That makes the value write safe:
    /// every reader of value bytes holds the stripe lock (`get` runs its
    /// closure under it; nothing keeps a reference to an item after its
    /// stripe lock is released), and the key, which class-lock holders may
    /// read, does not change. `nbytes` changes under the class lock too, so
    /// `requested` stays consistent with what `free_locked` subtracts.
    #[allow(clippy::too_many_arguments)]
    fn overwrite(
        &self,
        stripe: usize,
        r: Ref,
        value: &[u8],
        flags: u32,
        exptime: RelTime,
        set: u8,
        cas: u64,
        now: RelTime,
    ) {
        let c = self.chunk(r);
        let h = c.hdr();
        let nkey = h.nkey.load(Relaxed) as usize;
        // SAFETY: stripe lock held (see above); `fits_in_place` checked that
        // header + cas + key + value fit this chunk's class size.
        unsafe {
            c.bytes_mut(self.lay.val_off(nkey), value.len())
                .copy_from_slice(value)
        };
        h.flags.store(flags, Relaxed);
        h.exptime.store(exptime, Relaxed);
        h.time.store(now, Relaxed);
        c.set_cas(&self.lay, cas);
        self.ht.count_store(stripe);
        let seg = self.segment_for(exptime, now);
        let reset = bits::FETCHED | bits::ACTIVE | bits::STALE | bits::WIN;
        // Same size, staying in the segmented HOT/WARM/COLD LRU: no class
        // lock. Instead of moving the item to the HOT head now (the class
        // lock is the one line every set of this size class would bounce
        // between workers), it is marked ACTIVE, which keeps it from being
        // evicted: at an LRU tail it moves to WARM like a recently read item.
        // Only the TEMP segment (another list) and `-o no_modern`'s strict
        // LRU need the relink. `lru` is read without the class lock: only
        // stores (under this stripe lock) move items into or out of TEMP.
        if self.cfg.lru_maintainer
            && h.nbytes.load(Relaxed) as usize == value.len()
            && seg == HOT
            && h.lru.load(Relaxed) != TEMP
        {
            let want = set | bits::ACTIVE;
            if h.bits.load(Relaxed) & reset != want {
                h.clear(reset & !want);
                h.set(want);
            }
            return;
        }
        let cls = h.clsid.load(Relaxed) as usize;
        let mut cs = self.lock_class(cls);
        cs.requested -= self.item_total(c);
        h.nbytes.store(value.len() as u32, Relaxed);
        cs.requested += self.item_total(c);
        let from = h.lru.load(Relaxed);
        if from != seg || cs.lru[seg as usize].head != r {
            cs.lru[from as usize].unlink(&self.arena, r);
            h.lru.store(seg, Relaxed);
            cs.lru[seg as usize].push_head(&self.arena, r);
        }
        if h.bits.load(Relaxed) & reset != set {
            h.clear(reset & !set);
            h.set(set);
        }
    }

    /// Tells the crawler that an item with a TTL exists (stores, and every
    /// path that changes an exptime: touch, gat, meta T/I, ma T).
    #[inline]
    fn note_ttl(&self, exp: RelTime) {
        if exp != 0 && !self.ttl_seen.load(Relaxed) {
            self.ttl_seen.store(true, Relaxed);
        }
    }

    /// LRU segment of a newly stored item: TEMP for a short TTL, else HOT.
    /// Also tells the crawler that an item with a TTL exists.
    #[inline]
    fn segment_for(&self, exp: RelTime, now: RelTime) -> u8 {
        self.note_ttl(exp);
        if self.cfg.temporary_ttl > 0
            && exp != 0
            && exp.saturating_sub(now) <= self.cfg.temporary_ttl
        {
            TEMP
        } else {
            HOT
        }
    }

    // ---- operations ----------------------------------------------------

    pub fn get<R>(
        &self,
        key: &[u8],
        opts: GetOptions,
        f: impl FnOnce(&mut ItemView) -> R,
    ) -> Option<R> {
        let now = clock::now();
        let hv = hash_key(key);
        let _g = self.ht.lock(self.ht.stripe_of(hv));
        let r = self.find_live(hv, key, now, true, false);
        if r == NIL {
            return None;
        }
        let c = self.chunk(r);
        let h = c.hdr();
        if let Some(exp) = opts.new_exptime {
            h.exptime.store(exp, Relaxed);
            self.note_ttl(exp);
        }
        let b = h.bits.load(Relaxed);
        let (first, next) = self.value_parts(r);
        let mut view = ItemView {
            key: c.key(&self.lay),
            meta: ItemMeta {
                flags: h.flags.load(Relaxed),
                cas: c.cas(&self.lay),
                exptime: h.exptime.load(Relaxed),
                last_access: h.time.load(Relaxed),
                fetched: b & bits::FETCHED != 0,
                stale: b & bits::STALE != 0,
                win_sent: b & bits::WIN != 0,
            },
            class: h.clsid.load(Relaxed),
            first,
            next,
            len: h.nbytes.load(Relaxed) as usize,
            arena: &self.arena,
        };
        let out = f(&mut view);
        let m = view.meta;
        h.exptime.store(m.exptime, Relaxed);
        self.note_ttl(m.exptime);
        let mut set = 0;
        let mut clear = 0;
        if m.stale {
            set |= bits::STALE
        } else {
            clear |= bits::STALE
        }
        if m.win_sent {
            set |= bits::WIN
        } else {
            clear |= bits::WIN
        }
        if !opts.no_bump {
            if b & bits::FETCHED == 0 {
                set |= bits::FETCHED;
            } else if b & bits::ACTIVE == 0 {
                set |= bits::ACTIVE;
            }
            h.time.store(now, Relaxed);
        }
        if b & set != set {
            h.set(set);
        }
        if b & clear != 0 {
            h.clear(clear);
        }
        Some(out)
    }

    /// The checks of a store against the key's current item, under its
    /// stripe lock: the live old item (or NIL) and whether the store is a
    /// stale one (meta invalidation), or the outcome that ends it here.
    fn check_store(
        &self,
        req: &StoreRequest,
        hv: u64,
        now: RelTime,
    ) -> Result<(Ref, bool), StoreOutcome> {
        let old = self.find_live(hv, req.key, now, false, true);
        let oc = self.chunk(if old == NIL { 1 } else { old });
        let mut stale = false;
        if let Some(c) = req.compare_cas {
            if old == NIL {
                return Err(StoreOutcome::NotFound);
            }
            let cur = oc.cas(&self.lay);
            if !self.cas_matches(oc, c) {
                if req.invalidate && c < cur {
                    stale = true;
                } else {
                    return Err(StoreOutcome::Exists);
                }
            }
        }
        match req.mode {
            SetMode::Add if old != NIL => {
                // memcached bumps the existing item on a failed add.
                oc.hdr().time.store(now, Relaxed);
                Err(StoreOutcome::NotStored)
            }
            SetMode::Replace | SetMode::Append | SetMode::Prepend if old == NIL => {
                Err(StoreOutcome::NotStored)
            }
            _ => Ok((old, stale)),
        }
    }

    /// Flags, exptime and win bit of the stored item: a concatenation keeps
    /// the old item's, a stale store its TTL and win token (memcached).
    fn store_attrs(
        &self,
        req: &StoreRequest,
        old: Ref,
        concat: bool,
        stale: bool,
    ) -> (u32, RelTime, bool) {
        let oc = self.chunk(if old == NIL { 1 } else { old });
        let (flags, mut exptime) = if concat {
            (oc.hdr().flags.load(Relaxed), oc.hdr().exptime.load(Relaxed))
        } else {
            (req.flags, req.exptime)
        };
        let mut win_sent = req.win_sent;
        if stale {
            exptime = oc.hdr().exptime.load(Relaxed);
            win_sent |= oc.hdr().has(bits::WIN);
        }
        (flags, exptime, win_sent)
    }

    /// Fills in the header of fresh item `r` (value already written) and
    /// links it in place of `old`. Caller holds the stripe lock. Returns
    /// the outcome with the new CAS.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        req: &StoreRequest,
        hv: u64,
        r: Ref,
        old: Ref,
        attrs: (u32, RelTime, bool),
        stale: bool,
        now: RelTime,
    ) -> StoreOutcome {
        let (flags, exptime, win_sent) = attrs;
        let c = self.chunk(r);
        let h = c.hdr();
        h.flags.store(flags, Relaxed);
        h.exptime.store(exptime, Relaxed);
        h.time.store(now, Relaxed);
        if stale {
            h.set(bits::STALE);
        }
        if win_sent {
            h.set(bits::WIN);
        }
        let floor = if old != NIL {
            self.chunk(old).cas(&self.lay)
        } else {
            0
        };
        let cas = req.new_cas.unwrap_or_else(|| self.next_cas(floor));
        c.set_cas(&self.lay, cas);
        self.link(hv, r, old, now);
        StoreOutcome::Stored(if self.cfg.use_cas { cas } else { 0 })
    }

    pub fn store(&self, req: &StoreRequest) -> StoreOutcome {
        let now = clock::now();
        let nkey = req.key.len();
        if nkey > 255 || self.lay.total(nkey, req.value.len()) > self.cfg.item_size_max {
            return StoreOutcome::TooLarge;
        }
        let hv = hash_key(req.key);
        let s = self.ht.stripe_of(hv);
        let _g = self.ht.lock(s);
        let (old, stale) = match self.check_store(req, hv, now) {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        let oc = self.chunk(if old == NIL { 1 } else { old });
        let concat = matches!(req.mode, SetMode::Append | SetMode::Prepend);
        let old_parts: Vec<&[u8]> = if concat {
            self.parts_vec(old)
        } else {
            Vec::new()
        };
        let old_len: usize = old_parts.iter().map(|p| p.len()).sum();
        let nbytes = req.value.len() + old_len;
        if self.lay.total(nkey, nbytes) > self.cfg.item_size_max {
            return StoreOutcome::TooLarge;
        }
        let attrs = self.store_attrs(req, old, concat, stale);
        if !concat && old != NIL && self.fits_in_place(oc, nbytes) {
            let (flags, exptime, win_sent) = attrs;
            let cas = req
                .new_cas
                .unwrap_or_else(|| self.next_cas(oc.cas(&self.lay)));
            let mut set = 0;
            if stale {
                set |= bits::STALE;
            }
            if win_sent {
                set |= bits::WIN;
            }
            self.overwrite(s, old, req.value, flags, exptime, set, cas, now);
            return StoreOutcome::Stored(if self.cfg.use_cas { cas } else { 0 });
        }
        let Some(r) = self.alloc_item(req.key, nbytes, Some(s), old) else {
            if req.mode == SetMode::Set && old != NIL {
                // Like memcached: a failed set must not leave the old value.
                self.unlink_free(hv, old);
            }
            return StoreOutcome::NoMemory;
        };
        if concat {
            let mut src: Vec<&[u8]> = Vec::with_capacity(old_parts.len() + 1);
            if req.mode == SetMode::Append {
                src.extend_from_slice(&old_parts);
                src.push(req.value);
            } else {
                src.push(req.value);
                src.extend_from_slice(&old_parts);
            }
            self.write_value(r, &src);
        } else {
            self.write_value(r, &[req.value]);
        }
        self.publish(req, hv, r, old, attrs, stale, now)
    }

    /// Allocates an unlinked item for `key` with room for a value of
    /// `nbytes`, to be filled by its owner (a connection reading a data
    /// block straight from its socket) and then linked by
    /// [`Inner::store_reserved`] or freed by [`Inner::free_reserved`].
    /// None when the item would be too large or memory is short: the caller
    /// then stores the ordinary way, which answers those cases.
    pub fn reserve(&self, key: &[u8], nbytes: usize) -> Option<Ref> {
        if key.len() > 255 || self.lay.total(key.len(), nbytes) > self.cfg.item_size_max {
            return None;
        }
        self.alloc_item(key, nbytes, None, NIL)
    }

    /// The writable value area of reserved item `r` from value offset
    /// `off` to the end of the piece holding it (empty at the end).
    ///
    /// SAFETY: `r` is a reserved item exclusively owned by the caller (not
    /// linked, so no lookup, LRU walk, crawler or page mover touches its
    /// bytes), and no other slice returned for it is alive.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn reserved_space(&self, r: Ref, off: usize) -> &mut [u8] {
        let c = self.chunk(r);
        let h = c.hdr();
        let nkey = h.nkey.load(Relaxed) as usize;
        let total = h.nbytes.load(Relaxed) as usize;
        if off >= total {
            return &mut [];
        }
        if !h.has(bits::CHAINED) {
            return c.bytes_mut(self.lay.val_off(nkey) + off, total - off);
        }
        let size = self.classes[self.largest_class()].size;
        let head_off = self.lay.chain_data_off(nkey);
        let head_len = total.min(size - head_off);
        if off < head_len {
            return c.bytes_mut(head_off + off, head_len - off);
        }
        let mut start = head_len;
        for p in c.pieces(&self.lay) {
            let n = p.hdr().nbytes.load(Relaxed) as usize;
            if off < start + n {
                return p.bytes_mut(super::item::HDR + off - start, start + n - off);
            }
            start += n;
        }
        &mut []
    }

    /// Links reserved item `r`, whose value its owner has written, with
    /// `req`'s semantics (set/add/replace/cas, meta's flags; `req.value` is
    /// ignored), evaluated now as memcached's `complete_nread` does. The
    /// item is consumed: freed unless stored.
    pub fn store_reserved(&self, req: &StoreRequest, r: Ref) -> StoreOutcome {
        debug_assert!(!matches!(req.mode, SetMode::Append | SetMode::Prepend));
        debug_assert!(self.chunk(r).key(&self.lay) == req.key);
        let now = clock::now();
        let hv = hash_key(req.key);
        let _g = self.ht.lock(self.ht.stripe_of(hv));
        let (old, stale) = match self.check_store(req, hv, now) {
            Ok(v) => v,
            Err(outcome) => {
                self.free_reserved(r);
                return outcome;
            }
        };
        let attrs = self.store_attrs(req, old, false, stale);
        self.publish(req, hv, r, old, attrs, stale, now)
    }

    /// Frees a reserved (never linked) item and its chain. Only the class
    /// lock is needed: nobody else can reach an unlinked item.
    pub fn free_reserved(&self, r: Ref) {
        let cls = self.chunk(r).hdr().clsid.load(Relaxed) as usize;
        let mut cs = self.lock_class(cls);
        self.free_locked(&mut cs, r);
    }

    pub fn delete(&self, req: &DeleteRequest) -> DeleteOutcome {
        let now = clock::now();
        let hv = hash_key(req.key);
        let s = self.ht.stripe_of(hv);
        let _g = self.ht.lock(s);
        let r = self.find_live(hv, req.key, now, false, false);
        if r == NIL {
            return DeleteOutcome::NotFound;
        }
        let c = self.chunk(r);
        let h = c.hdr();
        let deleted = DeleteOutcome::Deleted {
            class: h.clsid.load(Relaxed),
        };
        if let Some(cas) = req.compare_cas {
            if !self.cas_matches(c, cas) {
                return DeleteOutcome::Exists;
            }
        }
        if let Some(exp) = req.invalidate {
            h.set(bits::STALE);
            h.clear(bits::WIN);
            if let Some(x) = exp {
                h.exptime.store(x, Relaxed);
                self.note_ttl(x);
            }
            let cas = req
                .new_cas
                .unwrap_or_else(|| self.next_cas(c.cas(&self.lay)));
            c.set_cas(&self.lay, cas);
            return deleted;
        }
        if req.remove_value {
            // Replace with an empty value, keeping key, exptime and CAS.
            let Some(n) = self.alloc_item(req.key, 0, Some(s), r) else {
                self.unlink_free(hv, r);
                return deleted;
            };
            let nh = self.chunk(n).hdr();
            nh.flags.store(0, Relaxed);
            nh.exptime.store(h.exptime.load(Relaxed), Relaxed);
            nh.time.store(h.time.load(Relaxed), Relaxed);
            nh.set(h.bits.load(Relaxed) & (bits::FETCHED | bits::STALE | bits::WIN));
            let cas = req.new_cas.unwrap_or_else(|| c.cas(&self.lay));
            self.chunk(n).set_cas(&self.lay, cas);
            self.link(hv, n, r, now);
            return deleted;
        }
        self.unlink_free(hv, r);
        deleted
    }

    pub fn arith(&self, req: &ArithRequest) -> ArithOutcome {
        let now = clock::now();
        let hv = hash_key(req.key);
        let s = self.ht.stripe_of(hv);
        let g = self.ht.lock(s);
        let r = self.find_live(hv, req.key, now, false, false);
        if r == NIL {
            drop(g);
            if let Some((initial, exptime)) = req.vivify {
                let text = initial.to_string();
                let mut sr = StoreRequest::new(req.key, text.as_bytes(), 0, exptime, SetMode::Add);
                sr.new_cas = req.new_cas;
                return match self.store(&sr) {
                    StoreOutcome::Stored(cas) => ArithOutcome::Value {
                        value: initial,
                        cas,
                        exptime,
                        created: true,
                        class: self.class_of_size(req.key.len(), text.len()).unwrap_or(0) as u8,
                    },
                    StoreOutcome::NotStored => self.arith(&ArithRequest {
                        vivify: None,
                        ..*req
                    }),
                    _ => ArithOutcome::NoMemory,
                };
            }
            return ArithOutcome::NotFound;
        }
        let c = self.chunk(r);
        let h = c.hdr();
        let class = h.clsid.load(Relaxed);
        let (cur_bytes, _) = self.value_parts(r);
        // memcached: an empty or chained value is non-numeric before the CAS
        // is compared (a non-numeric text after it)
        if cur_bytes.is_empty() || h.has(bits::CHAINED) {
            return ArithOutcome::NonNumeric;
        }
        if let Some(cas) = req.compare_cas {
            if !self.cas_matches(c, cas) {
                return ArithOutcome::Exists;
            }
        }
        let Some(cur) = parse_u64(cur_bytes) else {
            return ArithOutcome::NonNumeric;
        };
        let value = if req.incr {
            cur.wrapping_add(req.delta)
        } else {
            cur.saturating_sub(req.delta)
        };
        let mut digits = [0u8; 20];
        let text = crate::decimal::decimal(value, &mut digits);
        let old_len = cur_bytes.len();
        let cas = req
            .new_cas
            .unwrap_or_else(|| self.next_cas(c.cas(&self.lay)));
        if let Some(x) = req.new_exptime {
            h.exptime.store(x, Relaxed);
            self.note_ttl(x);
        }
        let exptime = h.exptime.load(Relaxed);
        if text.len() <= old_len {
            // In place, padded with spaces, as memcached does.
            let nkey = h.nkey.load(Relaxed) as usize;
            // SAFETY: stripe lock held, no readers; range is the value.
            let v = unsafe { c.bytes_mut(self.lay.val_off(nkey), old_len) };
            v[..text.len()].copy_from_slice(text);
            v[text.len()..].fill(b' ');
            c.set_cas(&self.lay, cas);
            h.time.store(now, Relaxed);
        } else {
            let Some(n) = self.alloc_item(req.key, text.len(), Some(s), r) else {
                return ArithOutcome::NoMemory;
            };
            self.write_value(n, &[text]);
            let nh = self.chunk(n).hdr();
            nh.flags.store(h.flags.load(Relaxed), Relaxed);
            nh.exptime.store(exptime, Relaxed);
            nh.time.store(now, Relaxed);
            nh.set(h.bits.load(Relaxed) & (bits::FETCHED | bits::ACTIVE));
            self.chunk(n).set_cas(&self.lay, cas);
            self.link(hv, n, r, now);
        }
        ArithOutcome::Value {
            value,
            cas: if self.cfg.use_cas { cas } else { 0 },
            exptime,
            created: false,
            class,
        }
    }

    /// Invalidates every item last written before `at` (relative time; 0 = now).
    pub fn flush_all(&self, at: RelTime) {
        let now = clock::now();
        if at != 0 && at > now {
            self.flush_at.store(at, Relaxed);
            self.flush_pending.store(true, Relaxed);
            return;
        }
        self.flush_at.store(0, Relaxed);
        if self.cfg.use_cas {
            // Lazy, like memcached: everything stored so far is dead from
            // now on (counted as get_flushed when read); the crawler frees it.
            self.flush_cas.store(self.cas.load(Relaxed), Relaxed);
            // The crawler frees them shortly (memcached's curr_items drops
            // within tens of ms), after a grace period: like memcached's, a
            // read right after the flush still finds the dead item and
            // counts it in get_flushed.
            *self.flushed_at.lock() = Some(std::time::Instant::now());
            self.flush_pending.store(true, Relaxed);
            if let Some(t) = self.crawler.get() {
                t.unpark();
            }
            return;
        }
        for stripe in 0..self.ht.nstripes() {
            let _g = self.ht.lock(stripe);
            let mut victims = Vec::new();
            self.ht
                .for_each_in_stripe(&self.arena, stripe, |r| victims.push(r));
            for r in victims {
                let hv = hash_key(self.chunk(r).key(&self.lay));
                self.unlink_free(hv, r);
            }
        }
    }
}

/// A stored counter read as memcached's `safe_strtoull` reads the value
/// (which it sees followed by "\r\n"): leading whitespace, an optional sign,
/// decimal digits without overflow, then the end or whitespace (anything
/// after that is ignored); a '-' is refused unless the negated number still
/// looks non-negative as a signed one ("-0" is 0).
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut i = v.iter().take_while(|&&b| is_space(b)).count();
    let neg = match v.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = v[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || v.get(i + digits).is_some_and(|&b| !is_space(b)) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in &v[i..i + digits] {
        n = n.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        n = n.wrapping_neg();
        if (n as i64) < 0 {
            return None;
        }
    }
    Some(n)
}

#[cfg(test)]
#[test]
fn class_table_agrees_with_the_search() {
    for factor in [1.05, 1.25, 2.0] {
        let inner = Inner::new(StoreConfig {
            growth_factor: factor,
            lru_crawler: false,
            lru_maintainer: false,
            ..StoreConfig::default()
        });
        assert!(inner.classes.len() < 256, "class ids fit the table's u8");
        for total in 0..CLASS_LUT_MAX + 100 {
            assert_eq!(
                inner.class_for(total),
                search_class(&inner.classes, total),
                "total {total}, factor {factor}"
            );
        }
    }
}

#[cfg(test)]
mod perf_tests {
    //! CAS blocks and in-place overwrite (the two set-path shortcuts above).
    use super::super::*;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::mpsc::channel;

    fn quiet() -> StoreConfig {
        StoreConfig {
            memory_limit: 8 << 20,
            lru_crawler: false,
            lru_maintainer: false,
            ..Default::default()
        }
    }

    fn set(s: &Store, k: &[u8], v: &[u8]) -> u64 {
        match s.store(&StoreRequest::new(k, v, 0, 0, SetMode::Set)) {
            StoreOutcome::Stored(c) => c,
            o => panic!("set: {o:?}"),
        }
    }

    fn get(s: &Store, k: &[u8]) -> Option<(Vec<u8>, ItemMeta)> {
        s.get(k, GetOptions::default(), |v| {
            let mut out = Vec::new();
            v.append_value_to(&mut out);
            (out, v.meta)
        })
    }

    /// A thread whose CAS block is older than the id a key got from another
    /// thread still gives that key a larger CAS on its next store.
    #[test]
    fn key_cas_grows_across_threads() {
        let s = Store::new(quiet());
        let (to_main, from_t1) = channel();
        let (to_t1, from_main) = channel::<()>();
        std::thread::scope(|sc| {
            let s1 = &s;
            sc.spawn(move || {
                let c1 = set(s1, b"k", b"one"); // reserves T1's block
                to_main.send(c1).unwrap();
                from_main.recv().unwrap();
                let c3 = set(s1, b"k", b"three");
                to_main.send(c3).unwrap();
            });
            let c1 = from_t1.recv().unwrap();
            let c2 = std::thread::scope(|sc2| sc2.spawn(|| set(&s, b"k", b"two")).join().unwrap());
            assert!(c2 > c1, "{c2} > {c1}");
            to_t1.send(()).unwrap();
            let c3 = from_t1.recv().unwrap();
            assert!(c3 > c2, "{c3} > {c2}");
            let (v, m) = get(&s, b"k").unwrap();
            assert_eq!((&v[..], m.cas), (&b"three"[..], c3));
        });
    }

    /// Ids stay unique across threads and stores.
    #[test]
    fn cas_unique_across_threads_and_stores() {
        let a = Store::new(quiet());
        let b = Store::new(quiet());
        let ids: Vec<Vec<u64>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let (a, b) = (&a, &b);
                    sc.spawn(move || {
                        let mut v = Vec::new();
                        for i in 0..3000 {
                            let k = format!("t{t}-{}", i % 50);
                            v.push(set(a, k.as_bytes(), b"x"));
                            set(b, k.as_bytes(), b"y");
                        }
                        v
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u64> = ids.into_iter().flatten().collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a CAS id was handed out twice");
        assert!(all[0] > 0);
    }

    /// Overwrites in place keep values, flags, accounting and LRU state right.
    #[test]
    fn overwrite_in_place_is_a_fresh_item() {
        let s = Store::new(quiet());
        let c1 = set(&s, b"k", &[b'a'; 200]);
        let r1 = s
            .inner
            .ht
            .find(&s.inner.arena, &s.inner.lay, hash_key(b"k"), b"k");
        assert!(!get(&s, b"k").unwrap().1.fetched);
        get(&s, b"k"); // fetched + active
        let bytes = s.stats().bytes;
        // Slightly shorter value, same class: same chunk, new everything.
        let mut r = StoreRequest::new(b"k", &[b'b'; 196], 9, 0, SetMode::Set);
        r.compare_cas = Some(c1);
        let StoreOutcome::Stored(c2) = s.store(&r) else {
            panic!()
        };
        assert!(c2 > c1);
        let r2 = s
            .inner
            .ht
            .find(&s.inner.arena, &s.inner.lay, hash_key(b"k"), b"k");
        assert_eq!(r1, r2, "same-class overwrite reuses the chunk");
        let (v, m) = get(&s, b"k").unwrap();
        assert_eq!(v, vec![b'b'; 196]);
        assert_eq!((m.flags, m.cas, m.fetched), (9, c2, false));
        assert_eq!(s.stats().bytes, bytes - 4);
        assert_eq!(s.stats().curr_items, 1);
        assert_eq!(s.stats().total_items, 2);
        // A TTL given in place wakes the crawler like a fresh item's does.
        s.inner.ttl_seen.store(false, Relaxed);
        let exp = crate::clock::now() + 100;
        s.store(&StoreRequest::new(b"k", &[b'e'; 196], 0, exp, SetMode::Set));
        assert!(s.inner.ttl_seen.load(Relaxed));
        assert_eq!(get(&s, b"k").unwrap().1.exptime, exp);
        // A much larger value moves to another chunk; accounting still adds up.
        set(&s, b"k", &[b'c'; 5000]);
        assert_eq!(get(&s, b"k").unwrap().0, vec![b'c'; 5000]);
        assert!(matches!(
            s.delete(&DeleteRequest::new(b"k")),
            DeleteOutcome::Deleted { .. }
        ));
        assert_eq!(s.stats().bytes, 0);
        assert_eq!(s.stats().curr_items, 0);
    }

    /// Many threads overwriting and reading the same few keys never see a
    /// torn value (readers and the in-place writer share the stripe lock).
    #[test]
    fn overwrite_in_place_never_torn() {
        let s = Store::new(quiet());
        std::thread::scope(|sc| {
            for t in 0..4u8 {
                let s = &s;
                sc.spawn(move || {
                    for i in 0..20_000u32 {
                        let k = [b'k', b'0' + (i % 8) as u8];
                        if i % 3 == 0 {
                            set(s, &k, &[b'a' + t; 300]);
                        } else if let Some((v, _)) = get(s, &k) {
                            assert_eq!(v.len(), 300);
                            assert!(v.iter().all(|&b| b == v[0]), "torn value");
                        }
                    }
                });
            }
        });
        assert_eq!(s.stats().curr_items, 8);
    }

    #[test]
    fn exptime_changes_wake_the_crawler() {
        let s = Store::new(quiet());
        set(&s, b"t", b"v");
        set(&s, b"n", b"1");
        let exp = crate::clock::now() + 100;
        // touch / gat / mg T
        s.inner.ttl_seen.store(false, Relaxed);
        let opts = GetOptions {
            new_exptime: Some(exp),
            ..Default::default()
        };
        assert!(s.get(b"t", opts, |_| ()).is_some());
        assert!(s.inner.ttl_seen.load(Relaxed));
        // ma T
        s.inner.ttl_seen.store(false, Relaxed);
        let mut req = ArithRequest::new(b"n", true, 1);
        req.new_exptime = Some(exp);
        assert!(matches!(s.arith(&req), ArithOutcome::Value { .. }));
        assert!(s.inner.ttl_seen.load(Relaxed));
    }
}
