//! Slab classes and their per-class state: chunk sizes growing by `-f`, the
//! free list, and the four LRU segments. Everything in [`ClassState`] is
//! protected by that class's mutex; list links live in the item headers
//! (`prev`/`next`), so lists cost no memory beyond the 32-bit links.

use super::arena::{Arena, Ref, NIL};
use super::item::{bits, Chunk, HDR};
use std::sync::atomic::Ordering::Relaxed;

/// Size information of one class (immutable after start).
#[derive(Clone, Copy, Debug)]
pub struct ClassInfo {
    pub size: usize,
    pub per_page: usize,
}

/// Most classes a table may have (ids are one byte; keep room below 255).
pub const MAX_CLASSES: usize = 200;

/// Each memcached class (growth `-f`) is split into this many finer classes.
/// Items carry a smaller header than memcached's, and pages move between
/// classes as the mix changes, so finer classes cut the chunk slack (about
/// 10% of memory at `-f 1.25`, under 4% here) without stranding memory.
pub const SUBCLASSES: f64 = 3.0;

/// Builds the class table like memcached: the first class fits `chunk_min`
/// bytes of key+value beyond the header, each next one is `factor^(1/3)`
/// larger (8-byte aligned), and the last class is exactly `chunk_max`.
/// Index 0 is unused so class ids start at 1 as in `stats slabs`.
pub fn build_classes(
    header: usize,
    chunk_min: usize,
    factor: f64,
    chunk_max: usize,
    page_size: usize,
) -> Vec<ClassInfo> {
    let factor = if factor > 1.0 { factor } else { 1.25 };
    let first = (header + chunk_min.max(8) + 7) & !7;
    // Fine enough to cut slack, coarse enough to stay within MAX_CLASSES.
    let min_step = (chunk_max as f64 / first as f64).powf(1.0 / (MAX_CLASSES as f64 - 8.0));
    let step = factor.powf(1.0 / SUBCLASSES).max(min_step);
    let mut v = vec![ClassInfo {
        size: 0,
        per_page: 0,
    }];
    let mut size = first;
    while v.len() < MAX_CLASSES && (size as f64) * step < chunk_max as f64 {
        v.push(ClassInfo {
            size,
            per_page: page_size / size,
        });
        let next = ((size as f64 * step) as usize + 7) & !7;
        size = next.max(size + 8);
    }
    v.push(ClassInfo {
        size: chunk_max,
        per_page: page_size / chunk_max,
    });
    v
}

/// A doubly linked list threaded through item headers.
#[derive(Default, Clone, Copy, Debug)]
pub struct List {
    pub head: Ref,
    pub tail: Ref,
    pub count: u32,
}

impl List {
    pub fn push_head(&mut self, arena: &Arena, r: Ref) {
        let h = Chunk::new(arena, r).hdr();
        h.prev.store(NIL, Relaxed);
        h.next.store(self.head, Relaxed);
        if self.head != NIL {
            Chunk::new(arena, self.head).hdr().prev.store(r, Relaxed);
        } else {
            self.tail = r;
        }
        self.head = r;
        self.count += 1;
    }

    /// Puts `new` where `old` is in the list (`old`'s links are left stale).
    pub fn replace(&mut self, arena: &Arena, old: Ref, new: Ref) {
        let oh = Chunk::new(arena, old).hdr();
        let prev = oh.prev.load(Relaxed);
        let next = oh.next.load(Relaxed);
        let nh = Chunk::new(arena, new).hdr();
        nh.prev.store(prev, Relaxed);
        nh.next.store(next, Relaxed);
        if prev != NIL {
            Chunk::new(arena, prev).hdr().next.store(new, Relaxed);
        } else {
            self.head = new;
        }
        if next != NIL {
            Chunk::new(arena, next).hdr().prev.store(new, Relaxed);
        } else {
            self.tail = new;
        }
    }

    pub fn unlink(&mut self, arena: &Arena, r: Ref) {
        let h = Chunk::new(arena, r).hdr();
        let prev = h.prev.load(Relaxed);
        let next = h.next.load(Relaxed);
        if prev != NIL {
            Chunk::new(arena, prev).hdr().next.store(next, Relaxed);
        } else {
            debug_assert_eq!(self.head, r);
            self.head = next;
        }
        if next != NIL {
            Chunk::new(arena, next).hdr().prev.store(prev, Relaxed);
        } else {
            debug_assert_eq!(self.tail, r);
            self.tail = prev;
        }
        h.prev.store(NIL, Relaxed);
        h.next.store(NIL, Relaxed);
        self.count -= 1;
    }
}

/// Per-class counters (memcached's `stats items` / `stats slabs` rows).
#[derive(Default, Clone, Copy, Debug)]
pub struct ClassCounters {
    pub total_items: u64,
    pub evicted: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub evicted_time: u32,
    pub outofmemory: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub crawler_reclaimed: u64,
    pub moves_to_cold: u64,
    pub moves_to_warm: u64,
    pub moves_within_lru: u64,
    pub direct_reclaims: u64,
    pub juggles: u64,
    pub slab_evictions: u64,
}

/// Mutable state of one class, behind the class mutex.
#[derive(Default)]
pub struct ClassState {
    pub free: List,
    pub lru: [List; 4],
    pub pages: Vec<u32>,
    /// Sum of item sizes (header + cas + key + value) of linked items.
    pub requested: u64,
    pub c: ClassCounters,
    /// Evictions seen by the last automove check.
    pub evictions_seen: u64,
    /// Smoothed evictions per second (automove's estimate of turnover).
    pub evict_rate: f64,
    /// Pages at the last automove check, and checks in a row since the
    /// class last grew, evicted or ran out of memory.
    pub pages_seen: usize,
    pub quiet_checks: u32,
}

impl ClassState {
    pub fn items(&self) -> u64 {
        self.lru.iter().map(|l| l.count as u64).sum()
    }

    pub fn push_free(&mut self, arena: &Arena, r: Ref) {
        Chunk::new(arena, r).hdr().bits.store(bits::FREE, Relaxed);
        self.free.push_head(arena, r);
    }

    /// Takes a free chunk; its state becomes "allocated, unlinked" (bits 0).
    pub fn pop_free(&mut self, arena: &Arena) -> Option<Ref> {
        let r = self.free.head;
        if r == NIL {
            return None;
        }
        self.free.unlink(arena, r);
        Chunk::new(arena, r).hdr().bits.store(0, Relaxed);
        Some(r)
    }

    /// Carves a fresh page into free chunks of this class.
    pub fn add_page(&mut self, arena: &Arena, info: ClassInfo, clsid: u8, page: u32) {
        let base = arena.page_ptr(page);
        // Push in reverse so allocation walks the page front to back.
        for i in (0..info.per_page).rev() {
            // SAFETY: i * size + size <= page_size, inside this page.
            let p = unsafe { base.add(i * info.size) };
            let r = arena.to_ref(p);
            let h = Chunk::new(arena, r).hdr();
            h.clsid.store(clsid, Relaxed);
            h.nkey.store(0, Relaxed);
            self.push_free(arena, r);
        }
        self.pages.push(page);
    }
}

/// Ref of chunk `i` of `page` for a class of chunk size `size`.
#[inline]
pub fn chunk_ref(arena: &Arena, page: u32, size: usize, i: usize) -> Ref {
    // SAFETY: caller keeps i < per_page, so the address is inside the page.
    arena.to_ref(unsafe { arena.page_ptr(page).add(i * size) })
}

/// Data bytes a continuation chunk of a chained item holds.
#[inline]
pub fn piece_capacity(chunk_max: usize) -> usize {
    chunk_max - HDR
}
