//! Listings of live items for the text protocol to write out: `stats
//! cachedump <class> <limit>` (one class's LRU, capped) and `lru_crawler
//! metadump` (every item, resumable). Both only read, under the class lock,
//! what the crawler reads.

use super::arena::NIL;
use super::engine::Inner;
use super::item::{bits, Chunk};
use super::slab::chunk_ref;
use super::Store;
use crate::clock::{self, RelTime};
use std::sync::atomic::Ordering::Relaxed;

impl Store {
    /// Calls `f(key, value_len, exptime)` for up to `limit` live items of
    /// `class` (0 = no limit), walking its LRU segments head to tail, until
    /// `f` returns false. Returns false for a class that does not exist.
    pub fn cachedump(
        &self,
        class: usize,
        limit: usize,
        mut f: impl FnMut(&[u8], u32, RelTime) -> bool,
    ) -> bool {
        let inner = &self.inner;
        if class == 0 || class >= inner.classes.len() {
            return false;
        }
        let now = clock::now();
        let cs = inner.lock_class(class);
        let mut listed = 0;
        for list in cs.lru.iter() {
            let mut r = list.head;
            while r != NIL {
                let c = inner.chunk(r);
                let h = c.hdr();
                r = h.next.load(Relaxed);
                // LINKED items keep their key while we hold the class lock.
                if !dumpable(inner, c, now) {
                    continue;
                }
                let key = c.key(&inner.lay);
                if !f(key, h.nbytes.load(Relaxed), h.exptime.load(Relaxed)) {
                    return true;
                }
                listed += 1;
                if limit != 0 && listed >= limit {
                    return true;
                }
            }
        }
        true
    }

    /// Calls `f` for each live item of the classes `wanted` accepts,
    /// walking slab pages in address order from `cursor` (0: the start).
    /// `f` returns false to stop; the returned cursor then continues after
    /// that item, and 0 means the walk is complete. Between calls items may
    /// move, so one can be missed or listed twice (memcached's metadump
    /// gives no more than that either); within a page the class lock holds.
    pub fn metadump(
        &self,
        wanted: impl Fn(usize) -> bool,
        cursor: u64,
        mut f: impl FnMut(&MetaRow) -> bool,
    ) -> u64 {
        let inner = &self.inner;
        let now = clock::now();
        let (first, pages) = {
            let pool = inner.pool.lock();
            (pool.first, pool.next_new)
        };
        // No page below `first` (>= 1) is handed out, so a live cursor is
        // never 0.
        let mut page = ((cursor >> 32) as u32).max(first);
        let mut chunk = (cursor & u32::MAX as u64) as usize;
        while page < pages {
            let cls = inner.page_class[page as usize].load(Relaxed) as usize;
            if cls != 0 && wanted(cls) {
                let _cs = inner.lock_class(cls);
                // The page may have changed class before the lock was taken.
                let info = inner.classes[cls];
                let same = inner.page_class[page as usize].load(Relaxed) as usize == cls;
                while same && chunk < info.per_page {
                    let c = inner.chunk(chunk_ref(&inner.arena, page, info.size, chunk));
                    chunk += 1;
                    let h = c.hdr();
                    if !dumpable(inner, c, now) {
                        continue;
                    }
                    let row = MetaRow {
                        key: c.key(&inner.lay),
                        exptime: h.exptime.load(Relaxed),
                        atime: h.time.load(Relaxed),
                        cas: c.cas(&inner.lay),
                        fetched: h.has(bits::FETCHED),
                        class: cls,
                        size: inner.item_total(c),
                    };
                    if !f(&row) {
                        return (page as u64) << 32 | chunk as u64;
                    }
                }
            }
            page += 1;
            chunk = 0;
        }
        0
    }
}

/// One live item as `lru_crawler metadump` lists it.
pub struct MetaRow<'a> {
    pub key: &'a [u8],
    /// Relative exptime, 0 = never.
    pub exptime: RelTime,
    /// Last access, relative.
    pub atime: RelTime,
    pub cas: u64,
    pub fetched: bool,
    pub class: usize,
    /// Bytes the item takes (header, CAS, key and value).
    pub size: u64,
}

/// Whether a dump lists the item in chunk `c`: a linked item that is
/// neither expired nor flushed. Caller holds its class lock.
fn dumpable(inner: &Inner, c: Chunk, now: RelTime) -> bool {
    c.hdr().has(bits::LINKED) && inner.dead(c, now).is_none()
}
