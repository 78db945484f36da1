//! Chained hash table of item refs with striped locks and incremental growth.
//!
//! Buckets hold the ref of the first item; items chain through
//! `Header::hnext`. A key's lock stripe is `hash & stripe_mask`, and the
//! stripe count never exceeds the bucket count, so every item in one bucket
//! (old or new table) belongs to the same stripe: holding a stripe lock
//! freezes all buckets of that stripe.
//!
//! Growth (memcached's "assoc expansion"): a new table of twice the size is
//! allocated, then old buckets are migrated one at a time, each under its
//! stripe lock, and the packed state word `(power, expanding, next bucket)`
//! is advanced in the same critical section. A thread holding stripe S sees
//! a state at least as new as the last migration of any bucket of S, and no
//! bucket of S can migrate while it holds S, so its choice of table is stable.
//! Once every bucket has moved, the old table is retired: its memory goes
//! back to the OS (`MADV_DONTNEED`), but the mapping stays until the table
//! is dropped, so the lock-free read of a bucket that prefetching does
//! ([`HashTable::prefetch_first_item`]) can never touch unmapped memory: at
//! worst it reads a stale ref or zero (NIL) and prefetches the wrong line.

use super::arena::{Arena, Ref, NIL};
use super::item::Chunk;
use crossbeam::utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

const MAX_POWER: u32 = 32;

/// A hint to load `p`'s cache line; never faults, whatever `p` is.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint; it does not fault on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Like [`prefetch`], but asks for the line in a writable state (PREFETCHW),
/// for a lock word about to be taken: a shared copy would need a second
/// trip to become exclusive for the lock's atomic.
#[inline(always)]
fn prefetch_for_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW is a hint that never faults (a NOP on CPUs without it).
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

pub struct HashTable {
    tables: Vec<AtomicPtr<AtomicU32>>,
    /// Tables replaced by a larger one: unmapped only on drop (see the top).
    retired: parking_lot::Mutex<Vec<(usize, u32)>>,
    /// bits 0..6 power, bit 6 expanding, bits 7.. next old bucket to migrate.
    state: AtomicU64,
    stripes: Box<[CachePadded<Stripe>]>,
    stripe_mask: u64,
}

/// A lock stripe, and a counter kept on the lock's own cache line so that
/// stores counted under the lock touch no line shared with other threads.
struct Stripe {
    lock: Mutex<()>,
    /// Stores counted with [`HashTable::count_store`] (written under `lock`).
    stores: AtomicU64,
}

pub type StripeGuard<'a> = MutexGuard<'a, ()>;

/// A zeroed (all NIL) table of 2^power buckets in its own anonymous
/// mapping, or null if the system has no memory for it.
fn alloc_table(power: u32) -> *mut AtomicU32 {
    const _: () = assert!(NIL == 0, "fresh mappings read as empty buckets");
    // SAFETY: a fresh private anonymous mapping; no existing memory involved.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            table_bytes(power),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p as *mut AtomicU32
    }
}

fn table_bytes(power: u32) -> usize {
    std::mem::size_of::<AtomicU32>() << power
}

impl HashTable {
    pub fn new(hashpower: u32) -> HashTable {
        let power = hashpower.clamp(10, 31);
        let nstripes = 1usize << power.min(12);
        let tables: Vec<AtomicPtr<AtomicU32>> = (0..=MAX_POWER)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect();
        let first = alloc_table(power);
        assert!(!first.is_null(), "no memory for the hash table");
        tables[power as usize].store(first, Ordering::Release);
        HashTable {
            tables,
            retired: parking_lot::Mutex::new(Vec::new()),
            state: AtomicU64::new(power as u64),
            stripes: (0..nstripes)
                .map(|_| {
                    CachePadded::new(Stripe {
                        lock: Mutex::new(()),
                        stores: AtomicU64::new(0),
                    })
                })
                .collect(),
            stripe_mask: nstripes as u64 - 1,
        }
    }

    #[inline]
    pub fn stripe_of(&self, hv: u64) -> usize {
        (hv & self.stripe_mask) as usize
    }

    #[inline]
    pub fn lock(&self, stripe: usize) -> StripeGuard<'_> {
        self.stripes[stripe].lock.lock()
    }

    /// Counts one store on `stripe`. Caller holds that stripe's lock, so a
    /// plain load and store suffice (no locked instruction).
    #[inline]
    pub fn count_store(&self, stripe: usize) {
        let c = &self.stripes[stripe].stores;
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Sum of [`count_store`](Self::count_store) over all stripes.
    pub fn stores_counted(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.stores.load(Ordering::Relaxed))
            .sum()
    }

    #[inline]
    pub fn try_lock(&self, stripe: usize) -> Option<StripeGuard<'_>> {
        self.stripes[stripe].lock.try_lock()
    }

    pub fn nstripes(&self) -> usize {
        self.stripes.len()
    }

    /// Current power (of the table being migrated from, while expanding).
    pub fn power(&self) -> u32 {
        (self.state.load(Ordering::Acquire) & 63) as u32
    }

    pub fn is_expanding(&self) -> bool {
        self.state.load(Ordering::Acquire) & 64 != 0
    }

    /// Where `hv`'s bucket is, as the current state says: the table (null
    /// if it was retired since the state was read) and the index in it.
    /// During growth, buckets already migrated are in the new table.
    #[inline]
    fn slot(&self, hv: u64) -> (*mut AtomicU32, usize) {
        let st = self.state.load(Ordering::Acquire);
        let power = (st & 63) as u32;
        let mut p = power;
        if st & 64 != 0 && hv & ((1u64 << power) - 1) < st >> 7 {
            p = power + 1;
        }
        let t = self.tables[p as usize].load(Ordering::Acquire);
        (t, (hv & ((1u64 << p) - 1)) as usize)
    }

    /// The bucket for `hv`. Caller holds `hv`'s stripe lock.
    #[inline]
    fn bucket(&self, hv: u64) -> &AtomicU32 {
        let (t, idx) = self.slot(hv);
        // SAFETY: under the stripe lock the state names a live table: table
        // `p` was allocated with 2^p buckets before the state naming it was
        // published, and none is unmapped before Drop.
        unsafe { &*t.add(idx) }
    }

    /// Starts loading `hv`'s stripe lock and bucket into cache, touching
    /// neither (a prefetch of a stale or freed address is harmless).
    #[inline]
    pub fn prefetch_bucket(&self, hv: u64) {
        let st = self.state.load(Ordering::Relaxed);
        let p = (st & 63) as u32;
        let t = self.tables[p as usize].load(Ordering::Relaxed);
        prefetch_for_write(std::ptr::addr_of!(self.stripes[self.stripe_of(hv)]) as *const u8);
        if !t.is_null() {
            prefetch(t.wrapping_add((hv & ((1u64 << p) - 1)) as usize) as *const u8);
        }
    }

    /// Starts loading the header of the first item in `hv`'s bucket, where
    /// a lookup will find its key. Reads the bucket without the stripe lock:
    /// tables stay mapped until drop (see the top), and a stale ref found in
    /// a racing read is still a ref into the arena, so the worst outcome of a
    /// race is a useless prefetch.
    #[inline]
    pub fn prefetch_first_item(&self, arena: &Arena, hv: u64) {
        let (t, idx) = self.slot(hv);
        if t.is_null() {
            return;
        }
        // SAFETY: `t` is a table of 2^p buckets (idx < 2^p) that stays
        // mapped until drop.
        let r = unsafe { &*t.add(idx) }.load(Ordering::Relaxed);
        if r != NIL {
            let p = arena.ptr(r) as *const u8;
            prefetch(p);
            prefetch(p.wrapping_add(64));
        }
    }

    /// Finds the item with `key`. Caller holds the stripe lock.
    #[inline]
    pub fn find(&self, arena: &Arena, lay: &super::item::Layout, hv: u64, key: &[u8]) -> Ref {
        let mut r = self.bucket(hv).load(Ordering::Relaxed);
        while r != NIL {
            let c = Chunk::new(arena, r);
            if c.hdr().nkey.load(Ordering::Relaxed) as usize == key.len() && c.key(lay) == key {
                return r;
            }
            r = c.hdr().hnext.load(Ordering::Relaxed);
        }
        NIL
    }

    /// Inserts `r` (not yet in the table). Caller holds the stripe lock.
    #[inline]
    pub fn insert(&self, arena: &Arena, hv: u64, r: Ref) {
        let b = self.bucket(hv);
        Chunk::new(arena, r)
            .hdr()
            .hnext
            .store(b.load(Ordering::Relaxed), Ordering::Relaxed);
        b.store(r, Ordering::Relaxed);
    }

    /// Unlinks `r`. Caller holds the stripe lock. Returns false if absent.
    pub fn remove(&self, arena: &Arena, hv: u64, r: Ref) -> bool {
        let b = self.bucket(hv);
        let mut prev: Option<Ref> = None;
        let mut cur = b.load(Ordering::Relaxed);
        while cur != NIL {
            let next = Chunk::new(arena, cur).hdr().hnext.load(Ordering::Relaxed);
            if cur == r {
                match prev {
                    None => b.store(next, Ordering::Relaxed),
                    Some(p) => Chunk::new(arena, p)
                        .hdr()
                        .hnext
                        .store(next, Ordering::Relaxed),
                }
                return true;
            }
            prev = Some(cur);
            cur = next;
        }
        false
    }

    /// Replaces `old` with `new` in place in its chain. Caller holds the stripe.
    pub fn replace(&self, arena: &Arena, hv: u64, old: Ref, new: Ref) {
        if self.remove(arena, hv, old) {
            self.insert(arena, hv, new);
        } else {
            debug_assert!(false, "replace of an unlinked item");
            self.insert(arena, hv, new);
        }
    }

    /// Bytes used by bucket arrays currently in use.
    pub fn bytes(&self) -> u64 {
        let st = self.state.load(Ordering::Acquire);
        let p = (st & 63) as u32;
        let mut b = (4u64) << p;
        if st & 64 != 0 {
            b += 4u64 << (p + 1);
        }
        b
    }

    /// Doubles the table, migrating one bucket per stripe-lock hold.
    /// `hash_of` recomputes an item's hash from its key (called under the
    /// stripe lock). Runs on the maintainer thread.
    pub fn expand(&self, arena: &Arena, hash_of: impl Fn(Ref) -> u64) {
        let st = self.state.load(Ordering::Acquire);
        let power = (st & 63) as u32;
        if st & 64 != 0 || power >= MAX_POWER - 1 {
            return;
        }
        let np = power + 1;
        if self.tables[np as usize].load(Ordering::Acquire).is_null() {
            let t = alloc_table(np);
            if t.is_null() {
                return; // no memory: keep the current table
            }
            self.tables[np as usize].store(t, Ordering::Release);
        }
        self.state.store(power as u64 | 64, Ordering::Release);
        let old = self.tables[power as usize].load(Ordering::Acquire);
        let new = self.tables[np as usize].load(Ordering::Acquire);
        let n_old = 1u64 << power;
        let new_mask = (1u64 << np) - 1;
        for b in 0..n_old {
            let _g = self.lock((b & self.stripe_mask) as usize);
            // SAFETY: b < 2^power buckets of `old`.
            let ob = unsafe { &*old.add(b as usize) };
            let mut r = ob.load(Ordering::Relaxed);
            while r != NIL {
                let c = Chunk::new(arena, r);
                let next = c.hdr().hnext.load(Ordering::Relaxed);
                let idx = (hash_of(r) & new_mask) as usize;
                // SAFETY: idx < 2^np buckets of `new`.
                let nb = unsafe { &*new.add(idx) };
                c.hdr()
                    .hnext
                    .store(nb.load(Ordering::Relaxed), Ordering::Relaxed);
                nb.store(r, Ordering::Relaxed);
                r = next;
            }
            ob.store(NIL, Ordering::Relaxed);
            let st = if b + 1 == n_old {
                np as u64
            } else {
                power as u64 | 64 | ((b + 1) << 7)
            };
            self.state.store(st, Ordering::Release);
        }
        // Retire the old table. Every old bucket was migrated under its
        // stripe lock, so any thread now holding a stripe sees a state in
        // which its buckets are migrated and never reads the old table
        // (`bucket` and `for_each_in_stripe` skip migrated old buckets).
        // Only a lock-free prefetch may still read it: the mapping stays.
        let ptr = self.tables[power as usize].swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !ptr.is_null() {
            // SAFETY: the whole mapping made by `alloc_table(power)`. Its pages
            // read as zero (NIL) from now on; nothing writes them any more.
            unsafe {
                libc::madvise(ptr.cast(), table_bytes(power), libc::MADV_DONTNEED);
            }
            self.retired.lock().push((ptr as usize, power));
        }
    }
}

impl Drop for HashTable {
    fn drop(&mut self) {
        let live = self.tables.iter().enumerate().map(|(p, t)| {
            let ptr: *mut AtomicU32 = t.load(Ordering::Acquire);
            (ptr as usize, p as u32)
        });
        let retired = std::mem::take(&mut *self.retired.lock());
        for (ptr, p) in live.chain(retired) {
            if ptr != 0 {
                // SAFETY: a whole mapping made by `alloc_table(p)`; the table
                // is being dropped, so nothing can read it any more.
                unsafe {
                    libc::munmap(ptr as *mut libc::c_void, table_bytes(p));
                }
            }
        }
    }
}

impl HashTable {
    /// Calls `f` with every item in the buckets of `stripe` (in every table
    /// in use). Caller holds the stripe lock; `f` must not modify chains.
    pub fn for_each_in_stripe(&self, arena: &Arena, stripe: usize, mut f: impl FnMut(Ref)) {
        let st = self.state.load(Ordering::Acquire);
        let power = (st & 63) as u32;
        // (table power, first bucket not yet migrated away)
        let mut tables = vec![(power, 0usize)];
        if st & 64 != 0 {
            tables = vec![(power, (st >> 7) as usize), (power + 1, 0)];
        }
        for (p, migrated) in tables {
            let t = self.tables[p as usize].load(Ordering::Acquire);
            let n = 1usize << p;
            let mut b = stripe;
            while b < n {
                if p == power && b < migrated && st & 64 != 0 {
                    b += self.stripes.len();
                    continue;
                }
                // SAFETY: b < 2^p buckets of table p.
                let mut r = unsafe { &*t.add(b) }.load(Ordering::Relaxed);
                while r != NIL {
                    let next = Chunk::new(arena, r).hdr().hnext.load(Ordering::Relaxed);
                    f(r);
                    r = next;
                }
                b += self.stripes.len();
            }
        }
    }
}
