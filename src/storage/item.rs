//! Item layout inside a slab chunk. Every chunk starts with a 32-byte
//! [`Header`]; an item is `header | cas (8, absent with -C) | key | value`.
//! Items larger than the largest chunk are *chained*: the head chunk holds
//! `header | cas | key | pad | next-chunk ref | first part of value`, and
//! each further chunk holds `header | data` with `hnext` pointing back to the
//! head (so a page mover can find the owner) and `next` to the next piece.
//!
//! Fields are atomics so that background threads may read them while a
//! worker updates them; they are only *written* under the locks documented
//! on each field. Relaxed atomics compile to plain loads/stores on x86.

use super::arena::{Arena, Ref, NIL};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

pub const HDR: usize = 32;

/// Chunk states and item bits (`Header::bits`).
pub mod bits {
    /// On its class's free list.
    pub const FREE: u8 = 1;
    /// In the hash table and an LRU list.
    pub const LINKED: u8 = 2;
    /// Read at least once since stored.
    pub const FETCHED: u8 = 4;
    /// Read again after the first fetch: protected from eviction.
    pub const ACTIVE: u8 = 8;
    /// Head of a chained (large) item.
    pub const CHAINED: u8 = 16;
    /// A continuation chunk of a chained item.
    pub const DATA: u8 = 32;
    /// Marked stale by meta invalidation.
    pub const STALE: u8 = 64;
    /// Meta "win" token handed out.
    pub const WIN: u8 = 128;
}

/// LRU segment of an item (`Header::lru`).
pub const HOT: u8 = 0;
pub const WARM: u8 = 1;
pub const COLD: u8 = 2;
pub const TEMP: u8 = 3;

#[repr(C)]
pub struct Header {
    /// Hash chain link (stripe lock); for DATA chunks the head's ref.
    pub hnext: AtomicU32,
    /// LRU / free-list links (class lock).
    pub prev: AtomicU32,
    /// LRU / free-list link (class lock); for chained pieces the next piece.
    pub next: AtomicU32,
    /// Last access, relative seconds.
    pub time: AtomicU32,
    /// Relative exptime, 0 = never.
    pub exptime: AtomicU32,
    /// Client flags.
    pub flags: AtomicU32,
    /// Value length (whole value for a chained head; this piece for DATA).
    pub nbytes: AtomicU32,
    pub nkey: AtomicU8,
    /// Slab class of the chunk.
    pub clsid: AtomicU8,
    /// LRU segment (class lock).
    pub lru: AtomicU8,
    /// `bits::*`; FREE/LINKED change under the class lock.
    pub bits: AtomicU8,
}

const _: () = assert!(std::mem::size_of::<Header>() == HDR);

impl Header {
    #[inline]
    pub fn has(&self, b: u8) -> bool {
        self.bits.load(Relaxed) & b != 0
    }
    #[inline]
    pub fn set(&self, b: u8) {
        self.bits.fetch_or(b, Relaxed);
    }
    #[inline]
    pub fn clear(&self, b: u8) {
        self.bits.fetch_and(!b, Relaxed);
    }
}

/// Offsets that depend on whether CAS is stored.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub cas_len: usize,
}

impl Layout {
    #[inline]
    pub fn key_off(&self) -> usize {
        HDR + self.cas_len
    }
    #[inline]
    pub fn val_off(&self, nkey: usize) -> usize {
        HDR + self.cas_len + nkey
    }
    /// Bytes an unchained item needs.
    #[inline]
    pub fn total(&self, nkey: usize, nbytes: usize) -> usize {
        HDR + self.cas_len + nkey + nbytes
    }
    /// Offset of the next-piece ref in a chained head (4-aligned).
    #[inline]
    pub fn chain_ref_off(&self, nkey: usize) -> usize {
        (self.val_off(nkey) + 3) & !3
    }
    /// Offset where a chained head's first piece of value starts.
    #[inline]
    pub fn chain_data_off(&self, nkey: usize) -> usize {
        self.chain_ref_off(nkey) + 4
    }
}

/// Accessors over one chunk. All raw memory access goes through here.
#[derive(Clone, Copy)]
pub struct Chunk<'a> {
    pub arena: &'a Arena,
    pub r: Ref,
}

impl<'a> Chunk<'a> {
    #[inline]
    pub fn new(arena: &'a Arena, r: Ref) -> Self {
        Chunk { arena, r }
    }
    #[inline]
    pub fn hdr(&self) -> &'a Header {
        // SAFETY: every ref points at an 8-aligned chunk start inside the
        // arena, which stays mapped for the arena's lifetime; all fields
        // are atomics, so shared references never alias a plain write.
        unsafe { &*(self.arena.ptr(self.r) as *const Header) }
    }
    #[inline]
    fn base(&self) -> *mut u8 {
        self.arena.ptr(self.r)
    }
    #[inline]
    pub fn cas(&self, lay: &Layout) -> u64 {
        if lay.cas_len == 0 {
            return 0;
        }
        // SAFETY: offset HDR is 8-aligned and inside the chunk.
        unsafe { (*(self.base().add(HDR) as *const AtomicU64)).load(Relaxed) }
    }
    #[inline]
    pub fn set_cas(&self, lay: &Layout, v: u64) {
        if lay.cas_len != 0 {
            // SAFETY: as in `cas`.
            unsafe { (*(self.base().add(HDR) as *const AtomicU64)).store(v, Relaxed) }
        }
    }
    /// The key. Caller must hold a lock that keeps the chunk allocated and
    /// its key unchanged (stripe lock, or class lock for a LINKED item).
    #[inline]
    pub fn key(&self, lay: &Layout) -> &'a [u8] {
        let n = self.hdr().nkey.load(Relaxed) as usize;
        // SAFETY: key bytes are written before the item is published and
        // never change while it is allocated (caller's lock guarantees that).
        unsafe { std::slice::from_raw_parts(self.base().add(lay.key_off()), n) }
    }
    /// Raw bytes at `off..off+len` of this chunk, for reading.
    /// SAFETY: caller holds the item's stripe lock (no concurrent writer) and
    /// the range lies inside the chunk.
    #[inline]
    pub unsafe fn bytes(&self, off: usize, len: usize) -> &'a [u8] {
        std::slice::from_raw_parts(self.base().add(off), len)
    }
    /// Raw bytes for writing.
    /// SAFETY: caller owns the chunk exclusively (fresh, unpublished) or holds
    /// the item's stripe lock with no outstanding readers, and the range lies
    /// inside the chunk.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self, off: usize, len: usize) -> &'a mut [u8] {
        std::slice::from_raw_parts_mut(self.base().add(off), len)
    }
    #[inline]
    pub fn chain_next(&self, lay: &Layout) -> Ref {
        let nkey = self.hdr().nkey.load(Relaxed) as usize;
        // SAFETY: 4-aligned slot inside a chained head.
        unsafe { (*(self.base().add(lay.chain_ref_off(nkey)) as *const AtomicU32)).load(Relaxed) }
    }
    /// The pieces of a chained head, in order. Each piece's successor is
    /// read before the piece is yielded, so the caller may free or relink
    /// the piece it holds.
    #[inline]
    pub fn pieces(&self, lay: &Layout) -> Pieces<'a> {
        Pieces {
            arena: self.arena,
            next: self.chain_next(lay),
        }
    }
    #[inline]
    pub fn set_chain_next(&self, lay: &Layout, next: Ref) {
        let nkey = self.hdr().nkey.load(Relaxed) as usize;
        // SAFETY: as in `chain_next`.
        unsafe {
            (*(self.base().add(lay.chain_ref_off(nkey)) as *const AtomicU32)).store(next, Relaxed)
        }
    }
}

/// Iterator over a chained item's pieces (see [`Chunk::pieces`]).
pub struct Pieces<'a> {
    arena: &'a Arena,
    next: Ref,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Chunk<'a>;
    #[inline]
    fn next(&mut self) -> Option<Chunk<'a>> {
        if self.next == NIL {
            return None;
        }
        let c = Chunk::new(self.arena, self.next);
        self.next = c.hdr().next.load(Relaxed);
        Some(c)
    }
}
