//! Reads: `get`/`gets` (one key at a time; multi-key requests loop) and
//! `gat`/`gats`/`touch`, which also set a new exptime. Counts stats the way
//! memcached 1.6 does: every key of a get/gets is one `cmd_get` plus a
//! `get_hits` or `get_misses`; a key of gat/gats counts only `cmd_touch` and
//! `touch_hits`/`touch_misses` (memcached leaves `cmd_get` alone there).

use super::Ctx;
use crate::clock::{self, RelTime};
use crate::storage::{GetOptions, ItemView};

/// A read of one key, optionally touching it (gat/gats).
#[derive(Clone, Copy, Debug, Default)]
pub struct Retrieve {
    /// New relative exptime for gat/gats; `None` for plain get/gets.
    pub touch: Option<RelTime>,
}

impl Retrieve {
    /// A plain `get`/`gets`.
    pub fn get() -> Retrieve {
        Retrieve { touch: None }
    }

    /// A `gat`/`gats` with the protocol's exptime (converted like memcached).
    pub fn get_and_touch(exptime: i64) -> Retrieve {
        Retrieve {
            touch: Some(clock::exptime_to_rel(exptime)),
        }
    }

    /// Looks `key` up; on a hit runs `f` over the item while the store holds it.
    #[inline]
    pub fn execute<R>(&self, ctx: &Ctx, key: &[u8], f: impl FnOnce(&ItemView) -> R) -> Option<R> {
        let opts = GetOptions {
            no_bump: false,
            new_exptime: self.touch,
        };
        let r = ctx
            .shared
            .store
            .get(key, opts, |view| (view.class(), f(view)));
        let st = ctx.stats;
        ctx.shared
            .server_stats
            .detail
            .record_get(ctx.prefix_delimiter(), key, r.is_some());
        let class = r.as_ref().map_or(0, |&(c, _)| c);
        match (self.touch.is_some(), r.is_some()) {
            (false, true) => {
                st.cmd_get.incr();
                st.get_hits.incr();
                st.classes.get(class).get_hits.incr();
            }
            (false, false) => {
                st.cmd_get.incr();
                st.get_misses.incr();
            }
            (true, true) => {
                st.cmd_touch.incr();
                st.touch_hits.incr();
                st.classes.get(class).touch_hits.incr();
            }
            (true, false) => {
                st.cmd_touch.incr();
                st.touch_misses.incr();
            }
        }
        r.map(|(_, out)| out)
    }
}

/// `touch <key> <exptime>`: set a new exptime without fetching.
#[derive(Clone, Copy, Debug)]
pub struct Touch<'a> {
    pub key: &'a [u8],
    pub exptime: RelTime,
}

impl<'a> Touch<'a> {
    pub fn new(key: &'a [u8], exptime: i64) -> Touch<'a> {
        Touch {
            key,
            exptime: clock::exptime_to_rel(exptime),
        }
    }

    /// True when the item existed (memcached's `TOUCHED`).
    pub fn execute(&self, ctx: &Ctx) -> bool {
        let opts = GetOptions {
            no_bump: false,
            new_exptime: Some(self.exptime),
        };
        let class = ctx.shared.store.get(self.key, opts, |v| v.class());
        let hit = class.is_some();
        ctx.stats.cmd_touch.incr();
        if let Some(c) = class {
            ctx.stats.touch_hits.incr();
            ctx.stats.classes.get(c).touch_hits.incr();
        } else {
            ctx.stats.touch_misses.incr();
        }
        hit
    }
}
