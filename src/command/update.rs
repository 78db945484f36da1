//! Writes: set/add/replace/append/prepend/cas. The data block is read by the
//! protocol; this type only knows what to store and how to count it.

use super::Ctx;
use crate::clock::{self, RelTime};
use crate::stats::ClassStats;
use crate::storage::{DeleteRequest, Reserved, SetMode, StoreOutcome, StoreRequest};

/// memcached's per-item header (48 bytes; +8 with CAS) plus the key's NUL and
/// the value's "\r\n": used to refuse a value larger than `-I` before its data
/// block arrives, so it can be swallowed instead of buffered. With it the
/// largest accepted value is byte-for-byte memcached's (checked at -I 1m).
const ITEM_HEADER_ESTIMATE: usize = 48 + 1 + 2;

/// One write command, independent of the protocol it came in.
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    pub key: &'a [u8],
    pub flags: u32,
    pub exptime: RelTime,
    pub mode: SetMode,
    /// `cas`: store only if the item's CAS unique still equals this.
    pub compare_cas: Option<u64>,
}

impl<'a> Update<'a> {
    pub fn new(key: &'a [u8], flags: u32, exptime: i64, mode: SetMode) -> Update<'a> {
        Update {
            key,
            flags,
            exptime: clock::exptime_to_rel(exptime),
            mode,
            compare_cas: None,
        }
    }

    /// Is a value of `value_len` bytes certainly too large for `-I`?
    pub fn too_large(&self, ctx: &Ctx, value_len: usize) -> bool {
        let cfg = ctx.shared.store.config();
        // memcached stores the CAS unique (unless -C) and non-zero client
        // flags in 8 and 4 extra header bytes.
        let cas = if cfg.use_cas { 8 } else { 0 };
        let flags = if self.flags != 0 { 4 } else { 0 };
        let header = ITEM_HEADER_ESTIMATE + cas + flags;
        value_len.saturating_add(self.key.len() + header) > cfg.item_size_max
    }

    /// Refused before the data block arrived because of `too_large`.
    pub fn refuse_too_large(&self, ctx: &Ctx) {
        ctx.shared
            .server_stats
            .detail
            .record_set(ctx.prefix_delimiter(), self.key);
        self.rejected(ctx, StoreOutcome::TooLarge);
    }

    /// The value was refused before storing (too large, no memory). Like
    /// memcached, a failed `set` removes the old item so stale data does not
    /// outlive a write the client believes it made.
    fn rejected(&self, ctx: &Ctx, outcome: StoreOutcome) {
        if self.mode == SetMode::Set && self.compare_cas.is_none() {
            ctx.shared.store.delete(&DeleteRequest::new(self.key));
        }
        // memcached counts these per thread; they are printed by `stats`.
        match outcome {
            StoreOutcome::TooLarge => ctx.stats.store_too_large.incr(),
            StoreOutcome::NoMemory => ctx.stats.store_no_memory.incr(),
            _ => {}
        }
    }

    /// The `len`-byte data block did not end in "\r\n": memcached still
    /// counts the set.
    pub fn bad_data(&self, ctx: &Ctx, len: usize) {
        ctx.shared
            .server_stats
            .detail
            .record_set(ctx.prefix_delimiter(), self.key);
        ctx.stats.cmd_set.incr();
        self.class_stats(ctx, len).cmd_set.incr();
    }

    fn class_stats<'c>(&self, ctx: &Ctx<'c>, len: usize) -> &'c ClassStats {
        set_class_stats(ctx, self.key, len)
    }

    /// Stores `value` and counts `cmd_set` and the cas counters.
    pub fn execute(&self, ctx: &Ctx, value: &[u8]) -> StoreOutcome {
        let req = self.request(value);
        self.counted(ctx, value.len(), || ctx.shared.store.store(&req))
    }

    /// An item to read a data block of `len` bytes straight into (see
    /// [`Reserved`]), for modes that store the data block as the value
    /// (not append/prepend, which must copy the old value anyway). None:
    /// read the block into a buffer and [`Update::execute`] as usual.
    pub fn reserve(&self, ctx: &Ctx, len: usize) -> Option<Reserved> {
        if matches!(self.mode, SetMode::Append | SetMode::Prepend) {
            return None;
        }
        ctx.shared.store.reserve(self.key, len)
    }

    /// [`Update::execute`] for a value already read into `item`.
    pub fn execute_reserved(&self, ctx: &Ctx, item: Reserved) -> StoreOutcome {
        let req = self.request(b"");
        let len = item.len();
        self.counted(ctx, len, || ctx.shared.store.store_reserved(&req, item))
    }

    fn request(&self, value: &'a [u8]) -> StoreRequest<'a> {
        let mut req = StoreRequest::new(self.key, value, self.flags, self.exptime, self.mode);
        req.compare_cas = self.compare_cas;
        req
    }

    /// Runs the store of a `len`-byte value and counts it like memcached.
    fn counted(&self, ctx: &Ctx, len: usize, store: impl FnOnce() -> StoreOutcome) -> StoreOutcome {
        ctx.shared
            .server_stats
            .detail
            .record_set(ctx.prefix_delimiter(), self.key);
        let outcome = store();
        ctx.stats.cmd_set.incr();
        let per_class = self.class_stats(ctx, len);
        per_class.cmd_set.incr();
        if self.compare_cas.is_some() {
            count_cas(ctx, per_class, outcome);
        }
        if matches!(outcome, StoreOutcome::TooLarge | StoreOutcome::NoMemory) {
            self.rejected(ctx, outcome);
        }
        outcome
    }
}

/// The per-class counters a store of `key` with a `len`-byte value counts
/// in: memcached counts a set in the class of the item it allocates for the
/// new data, and cas results in the existing item's class, approximated here
/// by the new one's (the same unless the size moved to another class).
pub(super) fn set_class_stats<'c>(ctx: &Ctx<'c>, key: &[u8], len: usize) -> &'c ClassStats {
    let cls = ctx.shared.store.class_of_size(key.len(), len);
    ctx.stats.classes.get(cls.unwrap_or(0))
}

/// Counts the result of a store with a CAS (`cas`, `ms C`) like memcached:
/// hits and mismatches also in `per_class`, the value's class.
pub(super) fn count_cas(ctx: &Ctx, per_class: &ClassStats, outcome: StoreOutcome) {
    match outcome {
        StoreOutcome::Stored(_) => {
            ctx.stats.cas_hits.incr();
            per_class.cas_hits.incr();
        }
        StoreOutcome::Exists => {
            ctx.stats.cas_badval.incr();
            per_class.cas_badval.incr();
        }
        StoreOutcome::NotFound => ctx.stats.cas_misses.incr(),
        _ => {}
    }
}
