//! Server-wide commands: `flush_all`, `verbosity`, `cache_memlimit`,
//! `shutdown`, `stats reset`.

use super::Ctx;
use crate::clock;
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

/// What `lru_crawler crawl` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlOutcome {
    Ok,
    Disabled,
    BadClass,
    /// No class id given at all (`lru_crawler crawl ,`).
    NotStarted,
}

/// `lru_crawler crawl <all|id,id,...>`: reclaim expired items now. Our
/// crawler sweeps every class at once, so any valid list crawls them all.
pub fn lru_crawl(ctx: &Ctx, classes: &[u8]) -> CrawlOutcome {
    if !ctx.shared.config.lru_crawler {
        return CrawlOutcome::Disabled;
    }
    if classes != b"all" {
        // memcached's strtok skips empty ids ("1,,2," is 1 and 2).
        let mut ids = classes.split(|&b| b == b',').filter(|id| !id.is_empty());
        if ids.clone().next().is_none() {
            return CrawlOutcome::NotStarted;
        }
        let valid = ids.all(|id| {
            std::str::from_utf8(id)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .is_some_and(|id| (1..=MAX_CLASS_ID).contains(&id))
        });
        if !valid {
            return CrawlOutcome::BadClass;
        }
    }
    ctx.shared.store.crawl_now();
    CrawlOutcome::Ok
}
