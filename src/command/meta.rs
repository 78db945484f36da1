//! Meta commands (`mg ms md ma me`) executed against the store, with their
//! replies written straight into the connection's output buffer.
//!
//! The parser (`protocol::meta`) builds a [`MetaRequest`]; each function here
//! runs one request and formats the reply the way memcached 1.6 does: return
//! flags come back in the order the client sent them, followed by `Z`, `X`,
//! `W` on reads. Replies are written while the item is pinned, so values are
//! copied once, from the item into `out`.

use crate::clock::{self, exptime_to_rel, ttl_remaining, RelTime};
use crate::command::Ctx;
use crate::protocol::number::{push_i64, push_u64};
use crate::protocol::Out;
use crate::storage::{
    ArithOutcome, ArithRequest, DeleteOutcome, DeleteRequest, GetOptions, ItemMeta, Reserved,
    SetMode, StoreOutcome, StoreRequest,
};

/// Longest key memcached accepts (before base64 decoding).
pub const KEY_MAX: usize = 250;
/// Most tokens a meta command line may have before memcached rejects it.
pub const MAX_TOKENS: usize = 24;
/// Longest `O` token, the `O` included.
pub const MAX_OPAQUE: usize = 32;

/// One parsed meta command. Borrowed from the request line; no allocation.
#[derive(Clone)]
pub struct MetaRequest<'a> {
    key_raw: &'a [u8],
    /// The decoded key when `b` was given (binary keys are at most 187 bytes).
    key_bin: [u8; KEY_MAX],
    key_bin_len: usize,
    /// `b`: the key was base64; `k` echoes it base64-encoded, followed by ` b`.
    pub binary_key: bool,
    /// Flag tokens in the order sent (reply flags follow this order): the
    /// parser's token slice, borrowed rather than copied, so the request
    /// stays small (it is built for every meta command).
    flags: &'a [&'a [u8]],
    /// `v`
    pub value: bool,
    /// `q`
    pub quiet: bool,
    /// `u`
    pub no_bump: bool,
    /// `I`
    pub invalidate: bool,
    /// `x` (md, newer memcached)
    pub remove_value: bool,
    /// `N<ttl>` as sent.
    pub vivify: Option<i64>,
    /// `R<ttl>` as sent.
    pub recache: Option<i64>,
    /// `T<ttl>` as sent.
    pub ttl: Option<i64>,
    /// `F<flags>`
    pub client_flags: Option<u32>,
    /// `C<cas>`
    pub compare_cas: Option<u64>,
    /// `E<cas>` (newer memcached)
    pub new_cas: Option<u64>,
    /// `M<mode>`: the mode character.
    pub mode: Option<u8>,
    /// `J<initial>` (ma), default 0.
    pub initial: u64,
    /// `D<delta>` (ma), default 1.
    pub delta: u64,
}

impl<'a> MetaRequest<'a> {
    pub fn new(key: &'a [u8]) -> MetaRequest<'a> {
        MetaRequest {
            key_raw: key,
            key_bin: [0; KEY_MAX],
            key_bin_len: 0,
            binary_key: false,
            flags: &[],
            value: false,
            quiet: false,
            no_bump: false,
            invalidate: false,
            remove_value: false,
            vivify: None,
            recache: None,
            ttl: None,
            client_flags: None,
            compare_cas: None,
            new_cas: None,
            mode: None,
            initial: 0,
            delta: 1,
        }
    }

    /// The key to look up (decoded when `b` was given).
    pub fn key(&self) -> &[u8] {
        if self.binary_key {
            &self.key_bin[..self.key_bin_len]
        } else {
            self.key_raw
        }
    }

    /// The key as sent (base64 when `b` is given).
    pub fn raw_key(&self) -> &'a [u8] {
        self.key_raw
    }

    /// Where the parser decodes a base64 key; then `set_binary_key_len`.
    pub fn key_buf_mut(&mut self) -> &mut [u8; KEY_MAX] {
        &mut self.key_bin
    }
    pub fn set_binary_key_len(&mut self, n: usize) {
        self.binary_key = true;
        self.key_bin_len = n;
    }

    /// Records the flag tokens, once the parser has accepted them all.
    pub fn set_flags(&mut self, flags: &'a [&'a [u8]]) {
        self.flags = flags;
    }

    /// Flag tokens in request order.
    pub fn flags(&self) -> &'a [&'a [u8]] {
        self.flags
    }

    /// The same request seen only up to its first `n` flags (what memcached
    /// has acted on when it stops at a bad token while replying).
    fn with_flag_prefix(&self, n: usize) -> MetaRequest<'a> {
        let mut r = self.clone();
        r.flags = &self.flags[..n.min(self.flags.len())];
        r
    }
}

// ---- small formatting helpers (no fmt machinery, no allocation) ----

/// ` k<key>`, or ` k<base64 key> b` for binary keys, as memcached echoes them.
fn push_key(out: &mut Vec<u8>, req: &MetaRequest) {
    out.extend_from_slice(b" k");
    if req.binary_key {
        crate::protocol::meta::base64_encode(req.key(), out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(req.key());
    }
}

/// Echoes the `O` and `k` flags (all a miss or failure returns).
fn push_opaque_and_key(out: &mut Vec<u8>, req: &MetaRequest) {
    for tok in req.flags() {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => push_key(out, req),
            _ => {}
        }
    }
}

fn rel(ttl: Option<i64>) -> RelTime {
    ttl.map(exptime_to_rel).unwrap_or(0)
}

// ---- mg ----

/// Writes the `VA`/`HD` line for a hit, applying `T`, `N`, `R` in flag order
/// like memcached (a `t` before `T` reports the old TTL). Returns whether `T`
/// was given (the hit then counts as a touch).
fn write_get_hit(
    req: &MetaRequest,
    meta: &mut ItemMeta,
    value_len: usize,
    created: bool,
    now: RelTime,
    out: &mut Vec<u8>,
    complete: bool,
) -> bool {
    if req.value {
        out.extend_from_slice(b"VA ");
        push_u64(out, value_len as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut won = false;
    let mut ttl_set = false;
    for tok in req.flags() {
        match tok[0] {
            b'T' => {
                ttl_set = true;
                meta.exptime = rel(req.ttl);
            }
            b'N' if created => {
                meta.exptime = rel(req.vivify);
                won = true;
            }
            b'R' if !meta.win_sent
                && !created
                && meta.exptime != 0
                && meta.exptime < rel(req.recache) =>
            {
                won = true;
            }
            b's' => {
                out.extend_from_slice(b" s");
                push_u64(out, value_len as u64);
            }
            b't' => {
                out.extend_from_slice(b" t");
                push_i64(out, ttl_remaining(meta.exptime, now));
            }
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, meta.cas);
            }
            b'f' => {
                out.extend_from_slice(b" f");
                push_u64(out, meta.flags as u64);
            }
            b'l' => {
                out.extend_from_slice(b" l");
                push_u64(out, now.saturating_sub(meta.last_access) as u64);
            }
            b'h' => out.extend_from_slice(if meta.fetched { b" h1" } else { b" h0" }),
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => push_key(out, req),
            _ => {}
        }
    }
    // Z before X before W, and never W with Z.
    if meta.win_sent {
        out.extend_from_slice(b" Z");
    }
    if meta.stale {
        out.extend_from_slice(b" X");
        if !meta.win_sent {
            won = true;
        }
    }
    if won && complete {
        out.extend_from_slice(b" W");
        meta.win_sent = true;
    }
    out.extend_from_slice(b"\r\n");
    ttl_set
}

/// `mg`: read an item and its metadata; vivify (`N`) on a miss.
pub fn get(req: &MetaRequest, out: &mut Out, ctx: &Ctx) {
    match bad_opaque_at(req) {
        None => get_and_reply(req, out, ctx, true),
        Some(i) => {
            // memcached finds a too-long opaque while writing the reply: the
            // read, a vivify and the flags before it have taken effect; no
            // win token is handed out, and a locked (h l N R T) read is not
            // bumped. Then only the error is sent.
            let locked = req.flags().iter().any(|t| b"hlNRT".contains(&t[0]));
            let mut prefix = req.with_flag_prefix(i);
            prefix.no_bump |= locked;
            let start = out.len();
            get_and_reply(&prefix, out, ctx, false);
            out.truncate(start);
            out.extend_from_slice(OPAQUE_TOO_LONG);
        }
    }
}

/// Index of the first `O` token longer than memcached allows.
fn bad_opaque_at(req: &MetaRequest) -> Option<usize> {
    req.flags()
        .iter()
        .position(|t| t[0] == b'O' && t.len() > MAX_OPAQUE)
}

/// Is every `O` token short enough?
pub fn opaque_ok(req: &MetaRequest) -> bool {
    req.flags()
        .iter()
        .all(|t| t[0] != b'O' || t.len() <= MAX_OPAQUE)
}

pub const OPAQUE_TOO_LONG: &[u8] = b"CLIENT_ERROR opaque token too long\r\n";

/// `complete`: false when the reply will be replaced by an error (no win
/// token, no stats).
fn get_and_reply(req: &MetaRequest, out: &mut Out, ctx: &Ctx, complete: bool) {
    let store = &ctx.shared.store;
    let key = req.key();
    let opts = GetOptions {
        no_bump: req.no_bump,
        new_exptime: None,
    };
    // Two rounds at most: a vivify that loses the race to another creator
    // reads the item that client created.
    for _ in 0..2 {
        let now = clock::now();
        let hit = store.get(key, opts, |view| {
            let len = view.value_len();
            let ttl_set = write_get_hit(req, &mut view.meta, len, false, now, out, complete);
            if req.value && complete {
                // May go straight to the socket (see `Out`): only a reply
                // that is not replaced by an error afterwards.
                out.put_value(len, view.value_parts(), b"\r\n");
            } else if req.value {
                view.append_value_to(out);
                out.extend_from_slice(b"\r\n");
            }
            (ttl_set, view.class())
        });
        if let Some((ttl_set, class)) = hit {
            if complete {
                count_hit(ctx, ttl_set, class);
            }
            return;
        }
        if req.vivify.is_none() {
            break;
        }
        // Miss with N: create an empty placeholder whose win token is taken
        // by this client, atomically, so every other reader sees Z. Its TTL
        // is the last of N and T in flag order.
        let exptime = req
            .flags()
            .iter()
            .rev()
            .filter_map(|t| match t[0] {
                b'N' => Some(rel(req.vivify)),
                b'T' => Some(rel(req.ttl)),
                _ => None,
            })
            .next()
            .unwrap_or(0);
        let mut sr = StoreRequest::new(key, b"", 0, exptime, SetMode::Add);
        sr.new_cas = req.new_cas;
        sr.win_sent = complete;
        match store.store(&sr) {
            StoreOutcome::Stored(cas) => {
                // memcached creates the item with no TTL and sets it when it
                // reaches N in the flag loop.
                let mut meta = ItemMeta {
                    cas,
                    last_access: now,
                    ..ItemMeta::default()
                };
                let ttl_set = write_get_hit(req, &mut meta, 0, true, now, out, complete);
                if req.value {
                    out.extend_from_slice(b"\r\n");
                }
                if !req.no_bump && complete {
                    // memcached bumps the new item after the reply (marking it fetched)
                    store.get(key, GetOptions::default(), |_| ());
                }
                if complete {
                    let class = store.class_of_size(key.len(), 0).unwrap_or(0);
                    count_hit(ctx, ttl_set, class);
                }
                return;
            }
            StoreOutcome::NotStored => continue, // someone else created it
            _ => break,
        }
    }
    if complete {
        ctx.stats.cmd_get.incr();
        ctx.stats.get_misses.incr();
    }
    if req.quiet {
        return;
    }
    out.extend_from_slice(b"EN");
    push_opaque_and_key(out, req);
    out.extend_from_slice(b"\r\n");
}

fn count_hit(ctx: &Ctx, ttl_set: bool, class: usize) {
    let per_class = ctx.stats.classes.get(class);
    if ttl_set {
        ctx.stats.cmd_touch.incr();
        ctx.stats.touch_hits.incr();
        per_class.touch_hits.incr();
    } else {
        ctx.stats.cmd_get.incr();
        ctx.stats.get_hits.incr();
        per_class.get_hits.incr();
    }
}

// ---- ms ----

/// The store mode of an `ms` request.
fn set_mode(req: &MetaRequest) -> SetMode {
    match req.mode {
        Some(b'E') => SetMode::Add,
        Some(b'A') => SetMode::Append,
        Some(b'P') => SetMode::Prepend,
        Some(b'R') => SetMode::Replace,
        _ => SetMode::Set,
    }
}

/// An item to read the data block of `ms` (`len` bytes) straight into,
/// when its mode stores the block as the value (not append/prepend).
pub fn reserve(req: &MetaRequest, len: usize, ctx: &Ctx) -> Option<Reserved> {
    if matches!(set_mode(req), SetMode::Append | SetMode::Prepend) {
        return None;
    }
    ctx.shared.store.reserve(req.key(), len)
}

/// `ms`: store `data` (without its trailing "\r\n").
pub fn set(req: &MetaRequest, data: &[u8], out: &mut Vec<u8>, ctx: &Ctx) {
    set_with(req, data, data.len(), out, ctx, |sr| {
        ctx.shared.store.store(sr)
    });
}

/// `ms` whose data block was read into `item` (see [`reserve`]).
pub fn set_reserved(req: &MetaRequest, item: Reserved, out: &mut Vec<u8>, ctx: &Ctx) {
    let len = item.len();
    set_with(req, b"", len, out, ctx, |sr| {
        ctx.shared.store.store_reserved(sr, item)
    });
}

/// Stores `data` (or, through `store_fn`, a reserved item) of `len` bytes.
fn set_with(
    req: &MetaRequest,
    data: &[u8],
    len: usize,
    out: &mut Vec<u8>,
    ctx: &Ctx,
    store_fn: impl FnOnce(&StoreRequest) -> StoreOutcome,
) {
    let store = &ctx.shared.store;
    ctx.stats.cmd_set.incr();
    let per_class = super::update::set_class_stats(ctx, req.key(), len);
    per_class.cmd_set.incr();
    let mode = set_mode(req);
    let mut sr = StoreRequest::new(
        req.key(),
        data,
        req.client_flags.unwrap_or(0),
        rel(req.ttl),
        mode,
    );
    // memcached's add ignores a CAS; append/prepend treat C0 as no CAS
    sr.compare_cas = match mode {
        SetMode::Add => None,
        SetMode::Append | SetMode::Prepend => req.compare_cas.filter(|&c| c != 0),
        _ => req.compare_cas,
    };
    sr.new_cas = req.new_cas;
    // append/prepend compare a CAS plainly; only set/replace may store stale
    // (and C0 is never "older")
    sr.invalidate = req.invalidate
        && req.compare_cas != Some(0)
        && matches!(mode, SetMode::Set | SetMode::Replace);
    let outcome = store_fn(&sr);
    if sr.compare_cas.is_some() {
        super::update::count_cas(ctx, per_class, outcome);
    }
    let (code, cas): (&[u8], u64) = match outcome {
        StoreOutcome::Stored(cas) => (b"HD", cas),
        StoreOutcome::NotStored => (b"NS", 0),
        StoreOutcome::Exists => (b"EX", 0),
        // append/prepend with a CAS on a missing item is "not stored"
        StoreOutcome::NotFound if matches!(mode, SetMode::Append | SetMode::Prepend) => (b"NS", 0),
        StoreOutcome::NotFound => (b"NF", 0),
        StoreOutcome::TooLarge => {
            // like memcached: a failed set must not leave the old value behind
            store.delete(&DeleteRequest::new(req.key()));
            out.extend_from_slice(b"SERVER_ERROR object too large for cache\r\n");
            return;
        }
        StoreOutcome::NoMemory => {
            store.delete(&DeleteRequest::new(req.key()));
            out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
            return;
        }
    };
    if req.quiet && code == b"HD" {
        return;
    }
    out.extend_from_slice(code);
    for tok in req.flags() {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => push_key(out, req),
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, cas);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// An `ms` too large to store: like memcached, the old value must not
/// survive a failed write.
pub fn drop_old_value(req: &MetaRequest, ctx: &Ctx) {
    ctx.shared.store.delete(&DeleteRequest::new(req.key()));
}

// ---- md ----

/// `md`: delete, invalidate (`I`, mark stale) or drop the value (`x`).
pub fn delete(req: &MetaRequest, out: &mut Vec<u8>, ctx: &Ctx) {
    let mut dr = DeleteRequest::new(req.key());
    dr.compare_cas = match req.compare_cas {
        // with -C every item's CAS is 0, so C0 matches
        Some(0) if !ctx.shared.config.use_cas => None,
        c => c,
    };
    dr.new_cas = req.new_cas;
    if req.invalidate {
        dr.invalidate = Some(req.ttl.map(exptime_to_rel));
    } else {
        dr.remove_value = req.remove_value;
    }
    let code: &[u8] = match ctx.shared.store.delete(&dr) {
        DeleteOutcome::Deleted { class } => {
            if !req.invalidate {
                ctx.stats.delete_hits.incr();
                ctx.stats.classes.get(class.into()).delete_hits.incr();
            }
            if req.quiet {
                return;
            }
            b"HD"
        }
        DeleteOutcome::NotFound => {
            ctx.stats.delete_misses.incr();
            b"NF"
        }
        DeleteOutcome::Exists => {
            ctx.stats.delete_misses.incr();
            b"EX"
        }
    };
    out.extend_from_slice(code);
    push_opaque_and_key(out, req);
    out.extend_from_slice(b"\r\n");
}

// ---- ma ----

/// `ma`: incr/decr, with vivify (`N`, `J`), TTL update and CAS.
pub fn arith(req: &MetaRequest, out: &mut Vec<u8>, ctx: &Ctx) {
    let store = &ctx.shared.store;
    let incr = !matches!(req.mode, Some(b'D') | Some(b'-'));
    let mut ar = ArithRequest::new(req.key(), incr, req.delta);
    // memcached treats C0 as "no CAS given" for arithmetic
    ar.compare_cas = req.compare_cas.filter(|&c| c != 0);
    ar.new_cas = req.new_cas;
    if req.vivify.is_some() {
        // memcached creates the counter without a TTL and applies N and T
        // while writing the reply, stopping at a bad opaque: the TTL it ends
        // with is the last N or T before that
        let exptime = req
            .flags()
            .iter()
            .take_while(|t| t[0] != b'O' || t.len() <= MAX_OPAQUE)
            .filter_map(|t| match t[0] {
                b'N' => Some(rel(req.vivify)),
                b'T' => Some(rel(req.ttl)),
                _ => None,
            })
            .last()
            .unwrap_or(0);
        ar.vivify = Some((req.initial, exptime));
    }
    let outcome = store.arith(&ar);
    // memcached checks the opaque length only while writing the reply, after
    // the operation: the flags before a bad one take effect, then only the
    // error is sent.
    if matches!(outcome, ArithOutcome::NotFound | ArithOutcome::Exists) && !opaque_ok(req) {
        out.extend_from_slice(OPAQUE_TOO_LONG);
        return;
    }
    match outcome {
        ArithOutcome::Value {
            value,
            cas,
            exptime,
            created,
            class,
        } => {
            let per_class = ctx.stats.classes.get(class.into());
            if created {
                // memcached counts nothing for a vivified counter
            } else if incr {
                ctx.stats.incr_hits.incr();
                per_class.incr_hits.incr();
            } else {
                ctx.stats.decr_hits.incr();
                per_class.decr_hits.incr();
            }
            // Apply T and N in flag order, as memcached's reply loop does; a
            // new counter starts without a TTL until N is reached.
            let now = clock::now();
            let mut cur = if created { 0 } else { exptime };
            let mut bad_opaque = false;
            let start = out.len();
            if req.value {
                out.extend_from_slice(b"VA ");
                push_u64(out, decimal_len(value) as u64);
            } else {
                out.extend_from_slice(b"HD");
            }
            for tok in req.flags() {
                match tok[0] {
                    b'c' => {
                        out.extend_from_slice(b" c");
                        push_u64(out, cas);
                    }
                    b't' => {
                        out.extend_from_slice(b" t");
                        push_i64(out, ttl_remaining(cur, now));
                    }
                    b'T' => cur = rel(req.ttl),
                    b'N' if created => cur = rel(req.vivify),
                    b'O' if tok.len() > MAX_OPAQUE => {
                        bad_opaque = true;
                        break;
                    }
                    b'O' => {
                        out.push(b' ');
                        out.extend_from_slice(tok);
                    }
                    b'k' => push_key(out, req),
                    _ => {}
                }
            }
            out.extend_from_slice(b"\r\n");
            if req.value {
                push_u64(out, value);
                out.extend_from_slice(b"\r\n");
            }
            if cur != exptime {
                let touch = GetOptions {
                    no_bump: true,
                    new_exptime: Some(cur),
                };
                store.get(req.key(), touch, |_| ());
            }
            if bad_opaque {
                out.truncate(start);
                out.extend_from_slice(OPAQUE_TOO_LONG);
            } else if req.quiet && !created {
                // q hides a success, but not the reply to a vivify (memcached)
                out.truncate(start);
            }
        }
        ArithOutcome::NotFound => {
            if req.vivify.is_some() {
                out.extend_from_slice(b"NS");
            } else {
                if incr {
                    ctx.stats.incr_misses.incr();
                } else {
                    ctx.stats.decr_misses.incr();
                }
                out.extend_from_slice(b"NF");
            }
            push_opaque_and_key(out, req);
            out.extend_from_slice(b"\r\n");
        }
        ArithOutcome::Exists => {
            out.extend_from_slice(b"EX");
            push_opaque_and_key(out, req);
            out.extend_from_slice(b"\r\n");
        }
        ArithOutcome::NonNumeric => out
            .extend_from_slice(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
        ArithOutcome::NoMemory => out.extend_from_slice(b"SERVER_ERROR out of memory\r\n"),
    }
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

// ---- me ----

/// memcached's item header size: what `me` reports as `size` is the header
/// plus key, value, CAS and (non-zero) client flags, as memcached lays them out.
const MC_ITEM_HEADER: usize = 48;

/// The slab class memcached would put an item of `size` bytes in.
fn mc_slab_class(size: usize, chunk_min: usize, factor: f64, item_max: usize) -> u32 {
    let mut chunk = MC_ITEM_HEADER + chunk_min;
    let mut cls = 1;
    let factor = if factor > 1.0 { factor } else { 1.25 };
    while chunk < size && cls < 63 && (chunk as f64) < item_max as f64 / factor {
        if !chunk.is_multiple_of(8) {
            chunk += 8 - chunk % 8;
        }
        chunk = (chunk as f64 * factor) as usize;
        if !chunk.is_multiple_of(8) {
            chunk += 8 - chunk % 8;
        }
        cls += 1;
    }
    cls
}

/// `me`: human-readable item metadata, in memcached's format.
pub fn debug(req: &MetaRequest, out: &mut Vec<u8>, ctx: &Ctx) {
    ctx.stats.cmd_meta.incr();
    let cfg = &ctx.shared.config;
    let opts = GetOptions {
        no_bump: true,
        new_exptime: None,
    };
    let now = clock::now();
    let found = ctx.shared.store.get(req.key(), opts, |view| {
        let m = view.meta;
        out.extend_from_slice(b"ME ");
        if req.binary_key {
            crate::protocol::meta::base64_encode(req.key(), out);
        } else {
            out.extend_from_slice(req.key());
        }
        out.extend_from_slice(b" exp=");
        // memcached 1.6 prints now - exptime (negative while alive)
        push_i64(
            out,
            if m.exptime == 0 {
                -1
            } else {
                now as i64 - m.exptime as i64
            },
        );
        out.extend_from_slice(b" la=");
        push_u64(out, now.saturating_sub(m.last_access) as u64);
        out.extend_from_slice(b" cas=");
        push_u64(out, m.cas);
        out.extend_from_slice(if m.fetched {
            b" fetch=yes"
        } else {
            b" fetch=no"
        });
        let size = MC_ITEM_HEADER
            + req.key().len()
            + 1
            + view.value_len()
            + 2
            + if cfg.use_cas { 8 } else { 0 }
            + if m.flags != 0 { 4 } else { 0 };
        out.extend_from_slice(b" cls=");
        push_u64(
            out,
            mc_slab_class(size, cfg.chunk_min, cfg.growth_factor, cfg.item_size_max) as u64,
        );
        out.extend_from_slice(b" size=");
        push_u64(out, size as u64);
        out.extend_from_slice(b"\r\n");
    });
    if found.is_none() {
        out.extend_from_slice(b"EN\r\n");
    }
}
