//! `stats cachedump <class> <limit>`: a debugging listing of the live items
//! of one slab class, as memcached offers it (written by the text-protocol
//! side; it only reads, under the class lock, what the crawler reads).

use super::arena::NIL;
use super::item::bits;
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
                if !h.has(bits::LINKED) || inner.dead(c, now).is_some() {
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
}
