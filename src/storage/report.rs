//! Store counters and the per-class rows of `stats slabs`, `stats items`
//! and `stats sizes`, in memcached's naming.

use super::arena::NIL;
use super::engine::Inner;
use super::item::{COLD, HOT, TEMP, WARM};
use super::StoreStats;
use crate::clock;
use std::sync::atomic::Ordering::Relaxed;

type Rows = Vec<(String, String)>;

fn row(rows: &mut Rows, k: String, v: impl ToString) {
    rows.push((k, v.to_string()));
}

pub(crate) fn stats(inner: &Inner) -> StoreStats {
    let mut s = StoreStats {
        limit_maxbytes: inner.limit_bytes.load(Relaxed),
        hash_power_level: inner.ht.power(),
        hash_bytes: inner.ht.bytes(),
        get_expired: inner.get_expired.load(Relaxed),
        get_flushed: inner.get_flushed.load(Relaxed),
        slabs_moved: inner.slabs_moved.load(Relaxed),
        slab_reassign_rescues: inner.reassign_rescues.load(Relaxed),
        slab_reassign_chunk_rescues: inner.reassign_chunk_rescues.load(Relaxed),
        slab_reassign_evictions_nomem: inner.reassign_evictions_nomem.load(Relaxed),
        slab_reassign_busy_items: inner.reassign_busy_items.load(Relaxed),
        total_items: inner.ht.stores_counted(),
        slab_reassign_running: inner.reassign_running.load(Relaxed),
        lru_crawler_running: inner.crawler_running.load(Relaxed),
        ..Default::default()
    };
    for cls in 1..inner.classes.len() {
        let cs = inner.lock_class(cls);
        s.curr_items += cs.items();
        s.bytes += cs.requested;
        let c = &cs.c;
        s.total_items += c.total_items;
        s.evictions += c.evicted;
        s.evicted_unfetched += c.evicted_unfetched;
        s.evicted_active += c.evicted_active;
        s.expired_unfetched += c.expired_unfetched;
        s.reclaimed += c.reclaimed;
        s.crawler_reclaimed += c.crawler_reclaimed;
        s.moves_to_cold += c.moves_to_cold;
        s.moves_to_warm += c.moves_to_warm;
        s.lru_maintainer_juggles += c.juggles;
    }
    let pool = inner.pool.lock();
    s.total_malloced = pool.malloced() as u64 * inner.arena.page_size() as u64;
    s.slab_global_page_pool = pool.free.len() as u64;
    s
}

pub(crate) fn group(
    inner: &Inner,
    name: &str,
    per_class: &dyn Fn(usize) -> Vec<(&'static str, u64)>,
) -> Option<Rows> {
    let mut rows = Rows::new();
    let now = clock::now();
    match name {
        "slabs" => {
            let mut active = 0;
            for cls in 1..inner.classes.len() {
                let cs = inner.lock_class(cls);
                if cs.pages.is_empty() {
                    continue;
                }
                active += 1;
                let info = inner.classes[cls];
                let total = cs.pages.len() * info.per_page;
                let p = |k: &str| format!("{cls}:{k}");
                row(&mut rows, p("chunk_size"), info.size);
                row(&mut rows, p("chunks_per_page"), info.per_page);
                row(&mut rows, p("total_pages"), cs.pages.len());
                row(&mut rows, p("total_chunks"), total);
                row(&mut rows, p("used_chunks"), total - cs.free.count as usize);
                row(&mut rows, p("free_chunks"), cs.free.count);
                row(&mut rows, p("free_chunks_end"), 0);
                for (name, v) in per_class(cls) {
                    row(&mut rows, p(name), v);
                }
                row(&mut rows, p("mem_requested"), cs.requested);
            }
            let st = stats(inner);
            row(&mut rows, "active_slabs".into(), active);
            row(&mut rows, "total_malloced".into(), st.total_malloced);
        }
        "items" => {
            for cls in 1..inner.classes.len() {
                let cs = inner.lock_class(cls);
                if cs.items() == 0 && cs.c.evicted == 0 {
                    continue;
                }
                let age = |seg: u8| {
                    let t = cs.lru[seg as usize].tail;
                    if t == NIL {
                        0
                    } else {
                        now.saturating_sub(inner.chunk(t).hdr().time.load(Relaxed))
                    }
                };
                let c = cs.c;
                let p = |k: &str| format!("items:{cls}:{k}");
                row(&mut rows, p("number"), cs.items());
                row(&mut rows, p("number_hot"), cs.lru[HOT as usize].count);
                row(&mut rows, p("number_warm"), cs.lru[WARM as usize].count);
                row(&mut rows, p("number_cold"), cs.lru[COLD as usize].count);
                row(&mut rows, p("number_temp"), cs.lru[TEMP as usize].count);
                row(&mut rows, p("age_hot"), age(HOT));
                row(&mut rows, p("age_warm"), age(WARM));
                row(&mut rows, p("age"), age(COLD));
                row(&mut rows, p("mem_requested"), cs.requested);
                row(&mut rows, p("evicted"), c.evicted);
                row(&mut rows, p("evicted_nonzero"), 0);
                row(&mut rows, p("evicted_time"), c.evicted_time);
                row(&mut rows, p("outofmemory"), c.outofmemory);
                row(&mut rows, p("tailrepairs"), 0);
                row(&mut rows, p("reclaimed"), c.reclaimed);
                row(&mut rows, p("expired_unfetched"), c.expired_unfetched);
                row(&mut rows, p("evicted_unfetched"), c.evicted_unfetched);
                row(&mut rows, p("evicted_active"), c.evicted_active);
                row(&mut rows, p("crawler_reclaimed"), c.crawler_reclaimed);
                row(&mut rows, p("lrutail_reflocked"), 0);
                row(&mut rows, p("moves_to_cold"), c.moves_to_cold);
                row(&mut rows, p("moves_to_warm"), c.moves_to_warm);
                row(&mut rows, p("moves_within_lru"), c.moves_within_lru);
                row(&mut rows, p("direct_reclaims"), c.direct_reclaims);
                row(&mut rows, p("slab_evictions"), c.slab_evictions);
            }
        }
        "sizes" => {
            // Histogram of item sizes in 32-byte buckets, as memcached's
            // `stats sizes` prints it with size tracking on.
            let mut hist = std::collections::BTreeMap::<u64, u64>::new();
            for cls in 1..inner.classes.len() {
                let cs = inner.lock_class(cls);
                for seg in [HOT, WARM, COLD, TEMP] {
                    let mut r = cs.lru[seg as usize].head;
                    while r != NIL {
                        let c = inner.chunk(r);
                        let sz = inner.item_total(c);
                        *hist.entry(sz.div_ceil(32) * 32).or_default() += 1;
                        r = c.hdr().next.load(Relaxed);
                    }
                }
            }
            for (k, v) in hist {
                row(&mut rows, k.to_string(), v);
            }
        }
        _ => return None,
    }
    Some(rows)
}
