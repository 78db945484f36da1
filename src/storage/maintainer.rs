//! Background threads: the LRU maintainer (segment balancing, reclaiming
//! expired tails, hash table growth, slab automove) and the LRU crawler
//! (sweeps slab pages for expired and flushed items). Both only ever
//! `try_lock` item stripes while holding a class lock.

use super::arena::NIL;
use super::engine::{Dead, Inner};
use super::hash::hash_key;
use super::item::{bits, COLD, HOT, TEMP, WARM};
use super::slab::chunk_ref;
use crate::clock;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Like memcached's `slab_automove_ratio` (0.8 there, over 30 s windows; lower
/// here, and required for several checks in a row, for hysteresis): move when the youngest evicting
/// class's tail age is below this fraction of the oldest class's.
const AUTOMOVE_RATIO: f64 = 0.3;
/// Consecutive checks the gap must persist before pages move.
const AUTOMOVE_SUSTAIN: u32 = 5;
const AUTOMOVE_EVERY: Duration = Duration::from_millis(100);
/// Checks in a row without growth, evictions or allocation failures before
/// a class's free memory goes back to the global pool (memcached: a clean
/// `slab_automove_window`).
const RECLAIM_QUIET: u32 = 20;
const CRAWL_EVERY: Duration = Duration::from_secs(2);
const CRAWL_MAX_INTERVAL: Duration = Duration::from_secs(60);
/// How long after an immediate `flush_all` the crawler reclaims its items.
const FLUSH_GRACE: Duration = Duration::from_millis(100);

/// Reply to `slabs reassign`, worded as memcached words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassignResult {
    Ok,
    Busy,
    BadClass,
    NoSpare,
    Same,
    Disabled,
}

impl ReassignResult {
    /// The exact reply line (without "\r\n").
    pub fn reply(&self) -> &'static str {
        match self {
            ReassignResult::Ok => "OK",
            ReassignResult::Busy => "BUSY currently processing reassign request",
            ReassignResult::BadClass => "BADCLASS invalid src or dst class id",
            ReassignResult::NoSpare => "NOSPARE source class has no spare pages",
            ReassignResult::Same => "SAME src and dst class are identical",
            ReassignResult::Disabled => "CLIENT_ERROR slab reassignment disabled",
        }
    }
}

fn sleep_or_stop(inner: &Inner, d: Duration) -> bool {
    std::thread::park_timeout(d);
    inner.stop.load(Relaxed)
}

/// LRU maintainer loop.
pub(crate) fn maintainer(inner: Arc<Inner>) {
    let mut last_automove = Instant::now();
    let mut idle_sleep = Duration::from_millis(10);
    loop {
        let now = clock::now();
        let mut work = 0;
        let mut items = 0u64;
        for cls in 1..inner.classes.len() {
            let mut cs = inner.lock_class(cls);
            if cs.pages.is_empty() {
                continue;
            }
            work += inner.balance(&mut cs, 500);
            for seg in [HOT, WARM, COLD, TEMP] {
                for _ in 0..4 {
                    if !inner.pull_tail(&mut cs, seg, None, NIL, false, now, false) {
                        break;
                    }
                    work += 1;
                }
            }
            items += cs.items();
        }
        if !inner.ht.is_expanding() && items > (3u64 << inner.ht.power()) / 2 {
            let lay = inner.lay;
            inner
                .ht
                .expand(&inner.arena, |r| hash_key(inner.chunk(r).key(&lay)));
        }
        if last_automove.elapsed() >= AUTOMOVE_EVERY {
            if inner.cfg.slab_reassign && inner.over_limit() {
                work += shrink_to_limit(&inner);
            }
            let w = last_automove.elapsed().as_secs_f64();
            last_automove = Instant::now();
            automove(&inner, w);
        }
        idle_sleep = if work > 0 {
            Duration::from_millis(1)
        } else {
            (idle_sleep * 2).min(Duration::from_millis(100))
        };
        if sleep_or_stop(&inner, idle_sleep) {
            return;
        }
    }
}

/// After `cache_memlimit` lowered the limit below what is held: moves pages
/// out of classes with a page's worth of free chunks, which releases them to
/// the OS (as memcached's rebalancer does). Live items move to free chunks
/// elsewhere in their class; none is evicted. Returns pages moved.
fn shrink_to_limit(inner: &Inner) -> usize {
    let mut moved = 0;
    for cls in 1..inner.classes.len() {
        // Emptying a page without evicting needs a page's worth of free
        // chunks: skip the classes that lack them.
        if (inner.lock_class(cls).free.count as usize) < inner.classes[cls].per_page {
            continue;
        }
        while moved < 16 && inner.over_limit() && inner.move_page_out(cls, None, NIL, true) {
            moved += 1;
        }
    }
    moved
}

/// One automove decision (memcached's `slab_automove` 1 and 2). A class's
/// "age" is how long an item survives in it: items / eviction rate (smoothed)
/// while it evicts, else the age of its oldest item. Pages move from the
/// oldest class to the youngest evicting one when the gap is large; this
/// equalises item lifetimes across sizes and follows a shifting size mix.
fn automove(inner: &Inner, window: f64) {
    let mode = inner.automove.load(Relaxed);
    if mode == 0 || !inner.cfg.slab_reassign {
        return;
    }
    let now = clock::now();
    // (class, pages, age estimate in seconds, evicting?, free chunks, quiet?)
    let mut rows = Vec::new();
    for cls in 1..inner.classes.len() {
        let mut cs = inner.lock_class(cls);
        if cs.pages.is_empty() {
            continue;
        }
        let ev = cs.c.evicted + cs.c.outofmemory;
        let delta = ev - cs.evictions_seen;
        cs.evictions_seen = ev;
        cs.evict_rate = 0.7 * cs.evict_rate + 0.3 * (delta as f64 / window);
        let tail = [COLD, WARM, HOT]
            .iter()
            .map(|&s| cs.lru[s as usize].tail)
            .find(|&r| r != NIL);
        let tail_age = tail
            .map(|r| now.saturating_sub(inner.chunk(r).hdr().time.load(Relaxed)))
            .unwrap_or(0) as f64;
        let evicting = delta > 0 || cs.evict_rate > 0.5;
        let grew = cs.pages.len() > cs.pages_seen;
        cs.pages_seen = cs.pages.len();
        cs.quiet_checks = if delta > 0 || grew {
            0
        } else {
            cs.quiet_checks.saturating_add(1)
        };
        let age = if cs.evict_rate > 0.5 {
            (cs.items() as f64 / cs.evict_rate).min(tail_age + 1.0)
        } else {
            tail_age + 1.0
        };
        let quiet = cs.quiet_checks >= RECLAIM_QUIET;
        rows.push((
            cls,
            cs.pages.len(),
            age,
            evicting,
            cs.free.count as usize,
            quiet,
        ));
    }
    let anyone_evicting = rows.iter().any(|r| r.3);
    // Free memory goes back to the global pool, where any class can take
    // it without evicting: more than 2.5 pages of free chunks in a class
    // that has been quiet a while, or at once when another class evicts.
    // Its items move to free chunks elsewhere in the class.
    for &(cls, pages, _, _, free, quiet) in &rows {
        let per = inner.classes[cls].per_page;
        if pages > 1
            && free * 2 > per * 5
            && (quiet || anyone_evicting)
            && inner.move_page_out(cls, None, NIL, true)
        {
            return;
        }
    }
    if !anyone_evicting {
        return;
    }
    let Some(dst) = rows
        .iter()
        .filter(|r| r.3)
        .min_by(|a, b| a.2.total_cmp(&b.2))
    else {
        return;
    };
    let Some(src) = rows
        .iter()
        .filter(|r| r.0 != dst.0 && r.1 > 1)
        .max_by(|a, b| a.2.total_cmp(&b.2))
    else {
        return;
    };
    // Only a gap that persists moves pages: every move evicts a page worth
    // of items, so reacting to noise costs hits.
    let ratio = dst.2 / src.2.max(1e-9);
    let mut streak = inner.automove_streak.lock();
    if ratio < AUTOMOVE_RATIO && streak.0 == dst.0 {
        streak.1 += 1;
    } else {
        *streak = (dst.0, u32::from(ratio < AUTOMOVE_RATIO));
    }
    let sustained = streak.1 >= AUTOMOVE_SUSTAIN;
    drop(streak);
    let pages = match mode {
        2 => 1,
        _ if sustained && ratio < AUTOMOVE_RATIO / 4.0 => 4,
        _ if sustained => 1,
        _ => 0,
    };
    for _ in 0..pages.min(src.1 - 1) {
        inner.reassign_running.store(true, Relaxed);
        let ok = inner.move_page_out(src.0, None, NIL, false);
        inner.reassign_running.store(false, Relaxed);
        if !ok {
            break;
        }
    }
}

/// `slabs reassign <src> <dst>`: frees one page of `src` (-1: any class with
/// spare pages) into the pool, from which `dst` takes it when it next needs
/// memory.
pub(crate) fn reassign(inner: &Inner, src: i32, dst: i32) -> ReassignResult {
    if !inner.cfg.slab_reassign {
        return ReassignResult::Disabled;
    }
    let n = inner.classes.len() as i32;
    if src == dst {
        return ReassignResult::Same;
    }
    // Class 0 is the global page pool, as in memcached.
    if dst < 0 || dst >= n || src < -1 || src >= n {
        return ReassignResult::BadClass;
    }
    if src == 0 {
        return if inner.pool.lock().free.is_empty() {
            ReassignResult::NoSpare
        } else {
            ReassignResult::Ok // the pooled page goes to whichever class needs it
        };
    }
    let src = if src == -1 {
        let best = (1..inner.classes.len())
            .filter(|&c| c != dst as usize)
            .max_by_key(|&c| inner.lock_class(c).pages.len());
        match best {
            Some(c) => c,
            None => return ReassignResult::NoSpare,
        }
    } else {
        src as usize
    };
    if inner.lock_class(src).pages.len() < 2 {
        return ReassignResult::NoSpare;
    }
    if inner.reassign_running.swap(true, Relaxed) {
        return ReassignResult::Busy;
    }
    let ok = inner.move_page_out(src, None, NIL, false);
    inner.reassign_running.store(false, Relaxed);
    if ok {
        ReassignResult::Ok
    } else {
        ReassignResult::Busy
    }
}

/// LRU crawler loop: sweeps every page for dead items.
pub(crate) fn crawler(inner: Arc<Inner>) {
    // Sweeps cost a read of every chunk header, so they only run when
    // something can be dead (an item with a TTL was stored, or a flush
    // happened), and back off while sweeps find little.
    let mut every = CRAWL_EVERY;
    loop {
        if sleep_or_stop(&inner, every) {
            return;
        }
        // A flush wakes us early; reads right after it get FLUSH_GRACE to
        // find (and count) the flushed items first.
        let since_flush = inner.flushed_at.lock().map(|at| at.elapsed());
        if let Some(age) = since_flush.filter(|&age| age < FLUSH_GRACE) {
            if sleep_or_stop(&inner, FLUSH_GRACE - age) {
                return;
            }
        }
        let flushed = inner.flush_pending.swap(false, Relaxed);
        if !flushed && !inner.ttl_seen.swap(false, Relaxed) {
            every = (every * 2).min(CRAWL_MAX_INTERVAL);
            continue;
        }
        inner.crawler_running.store(true, Relaxed);
        let n = crawl_once(&inner);
        inner.crawler_running.store(false, Relaxed);
        // Items with TTLs may still be live: keep looking, slower if idle.
        inner.ttl_seen.store(true, Relaxed);
        every = if n > 0 || flushed {
            CRAWL_EVERY
        } else {
            (every * 2).min(CRAWL_MAX_INTERVAL)
        };
    }
}

/// Reclaims expired and flushed items in every page; returns items reclaimed.
pub(crate) fn crawl_once(inner: &Inner) -> u64 {
    let mut reclaimed = 0;
    for cls in 1..inner.classes.len() {
        let pages = inner.lock_class(cls).pages.clone();
        let info = inner.classes[cls];
        for page in pages {
            if inner.stop.load(Relaxed) {
                return reclaimed;
            }
            let now = clock::now();
            let mut cs = inner.lock_class(cls);
            if inner.page_class[page as usize].load(Relaxed) as usize != cls {
                continue; // moved away meanwhile
            }
            for i in 0..info.per_page {
                let r = chunk_ref(&inner.arena, page, info.size, i);
                let c = inner.chunk(r);
                let h = c.hdr();
                // LINKED is stable under the class lock, and so is the key.
                if !h.has(bits::LINKED) {
                    continue;
                }
                let Some(why) = inner.dead(c, now) else {
                    continue;
                };
                let hv = hash_key(c.key(&inner.lay));
                let Some(_g) = inner.ht.try_lock(inner.ht.stripe_of(hv)) else {
                    continue;
                };
                if why == Dead::Expired {
                    cs.c.reclaimed += 1;
                    cs.c.crawler_reclaimed += 1;
                    if !h.has(bits::FETCHED) {
                        cs.c.expired_unfetched += 1;
                    }
                }
                inner.ht.remove(&inner.arena, hv, r);
                inner.free_locked(&mut cs, r);
                reclaimed += 1;
            }
            drop(cs);
            std::thread::yield_now();
        }
    }
    reclaimed
}
