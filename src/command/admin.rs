//! Server-wide commands: `flush_all`, `verbosity`, `cache_memlimit`,
//! `shutdown`, `stats reset`.

use super::Ctx;
use crate::clock;
use crate::storage::MetaRow;
use std::sync::atomic::Ordering;

/// `flush_all [delay]`: invalidate every item now or `delay` from now.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlushAll {
    /// Protocol exptime: 0 or negative means now.
    pub delay: i64,
}

impl FlushAll {
    /// memcached counts `cmd_flush` even when the request turns out malformed.
    pub fn count(ctx: &Ctx) {
        ctx.stats.cmd_flush.incr();
    }

    /// False when `-F` disables flush_all (the store is left alone).
    pub fn allowed(ctx: &Ctx) -> bool {
        !ctx.shared.config.disable_flush_all
    }

    pub fn execute(&self, ctx: &Ctx) {
        let at = if self.delay > 0 {
            clock::exptime_to_rel(self.delay)
        } else {
            0
        };
        ctx.shared.store.flush_all(at);
    }
}

/// `verbosity <level>`: memcached clamps to its highest level, 2.
#[derive(Clone, Copy, Debug)]
pub struct Verbosity {
    pub level: u32,
}

impl Verbosity {
    pub fn execute(&self, ctx: &Ctx) {
        let level = self.level.min(2);
        ctx.shared.verbosity.store(level, Ordering::Relaxed);
        log::set_max_level(match level {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            _ => log::LevelFilter::Debug,
        });
    }
}

/// `cache_memlimit <megabytes>`.
#[derive(Clone, Copy, Debug)]
pub struct MemLimit {
    pub megabytes: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemLimitOutcome {
    Ok,
    /// Below memcached's 8 MB floor.
    TooSmall,
    /// Above 1e9: the client probably passed bytes.
    NotMegabytes,
}

impl MemLimit {
    pub fn execute(&self, ctx: &Ctx) -> MemLimitOutcome {
        if self.megabytes < 8 {
            return MemLimitOutcome::TooSmall;
        }
        if self.megabytes > 1_000_000_000 {
            return MemLimitOutcome::NotMegabytes;
        }
        ctx.shared
            .store
            .set_memory_limit((self.megabytes as usize) << 20);
        MemLimitOutcome::Ok
    }
}

/// `shutdown`: only honoured with `-A`. Returns false when not enabled.
pub fn shutdown(ctx: &Ctx) -> bool {
    if !ctx.shared.config.enable_shutdown {
        return false;
    }
    if let Some(control) = ctx.shared.control.get() {
        control.shutdown();
    }
    true
}

/// `stats reset`: zero every worker's counters, the connection totals and
/// (by recording a baseline) the store's counters.
pub fn stats_reset(ctx: &Ctx) {
    if let Some(workers) = ctx.shared.workers.get() {
        for w in workers {
            w.reset();
        }
    } else {
        ctx.stats.reset();
    }
    let s = &ctx.shared.server_stats;
    s.total_connections.store(0, Ordering::Relaxed);
    s.rejected_connections.store(0, Ordering::Relaxed);
    // Class counters first: the baseline then sees their sums at zero.
    ctx.shared.store.reset_class_counters();
    *s.store_base.lock() = ctx.shared.store.stats();
    s.detail.clear();
}

/// memcached accepts class ids below `MAX_NUMBER_OF_SLAB_CLASSES` (64).
const MAX_CLASS_ID: u32 = 63;

/// `slabs reassign <src> <dst>`: move a page between slab classes.
pub fn slabs_reassign(ctx: &Ctx, src: i32, dst: i32) -> &'static str {
    if !ctx.shared.config.slab_reassign {
        return "CLIENT_ERROR slab reassignment disabled";
    }
    ctx.shared.store.slabs_reassign(src, dst).reply()
}

/// `slabs automove <0|1|2>`: false for a level memcached refuses.
pub fn slabs_automove(ctx: &Ctx, level: u32) -> bool {
    ctx.shared.store.slabs_automove(level)
}

/// What `lru_crawler crawl|metadump` answered, when not `OK` or a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlOutcome {
    Ok,
    Disabled,
    BadClass,
    /// No class id given at all (`lru_crawler crawl ,`).
    NotStarted,
    /// `metadump` with dumping turned off (`-X`).
    NotAllowed,
}

/// The classes a `lru_crawler crawl|metadump` argument names: `None` for
/// "all" or "hash" (our crawler has no separate hash-table walk), else a
/// mask by class id of the comma-separated ids 1..=`max` (memcached's
/// strtok skips empty ones).
fn class_list(classes: &[u8], max: u32) -> Result<Option<Vec<bool>>, CrawlOutcome> {
    if classes == b"all" || classes == b"hash" {
        return Ok(None);
    }
    let mut mask = vec![false; max as usize + 1];
    let mut any = false;
    for id in classes.split(|&b| b == b',').filter(|id| !id.is_empty()) {
        let id = std::str::from_utf8(id)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|id| (1..=max).contains(id))
            .ok_or(CrawlOutcome::BadClass)?;
        mask[id as usize] = true;
        any = true;
    }
    if any {
        Ok(Some(mask))
    } else {
        Err(CrawlOutcome::NotStarted)
    }
}

/// `lru_crawler crawl <all|id,id,...>`: reclaim expired items now. Our
/// crawler sweeps every class at once, so any valid list crawls them all.
pub fn lru_crawl(ctx: &Ctx, classes: &[u8]) -> CrawlOutcome {
    if !ctx.shared.config.lru_crawler {
        return CrawlOutcome::Disabled;
    }
    // memcached walks the hash table only to dump (a hash crawl fails).
    if classes == b"hash" {
        return CrawlOutcome::BadClass;
    }
    if let Err(e) = class_list(classes, MAX_CLASS_ID) {
        return e;
    }
    ctx.shared.store.crawl_now();
    CrawlOutcome::Ok
}

/// `lru_crawler metadump <all|hash|id,id,...>`: calls `row` for each live
/// item of those classes from `cursor` (0: the start) until it returns
/// false; the cursor to continue from then, 0 once every item was listed
/// (see [`Store::metadump`](crate::storage::Store::metadump)).
pub fn lru_metadump(
    ctx: &Ctx,
    classes: &[u8],
    cursor: u64,
    row: impl FnMut(&MetaRow) -> bool,
) -> Result<u64, CrawlOutcome> {
    let cfg = &ctx.shared.config;
    if !cfg.lru_crawler {
        return Err(CrawlOutcome::Disabled);
    }
    if cfg.disable_dumping {
        return Err(CrawlOutcome::NotAllowed);
    }
    // Past memcached's 63 too: memcrab has more classes (three per -f step).
    let max = MAX_CLASS_ID.max(ctx.shared.store.slab_classes() as u32);
    let wanted = class_list(classes, max)?;
    let wanted = |cls: usize| wanted.as_ref().is_none_or(|m| m.get(cls) == Some(&true));
    Ok(ctx.shared.store.metadump(wanted, cursor, row))
}
