//! memcached's text (ASCII) protocol: `get gets gat gats set add replace
//! append prepend cas incr decr delete touch flush_all version verbosity quit
//! shutdown cache_memlimit stats`. [`parse`] turns one request line into a
//! [`Request`] borrowing from the line (pure, no allocation); [`handle`] runs
//! it through the command layer and writes memcached's reply bytes.
//!
//! Quirks copied on purpose, because clients and memcached's own tests see
//! them: tokens split on ' ' only; numbers parse like C's `strtoul`/`strtol`
//! (leading '+' accepted, 32-bit fields truncated); `noreply` is recognised
//! only as the last token and silences errors too; a bad data block consumes
//! exactly `<bytes>+2` bytes and the rest is read as the next command.

pub use super::number::{push_u64, strtol32, strtoul32, strtoull};
use super::{nread, Out, Step};
use crate::command::admin::CrawlOutcome;
use crate::command::{
    admin, Arith, Ctx, Delete, FlushAll, MemLimit, MemLimitOutcome, Retrieve, Touch, Update,
    Verbosity, KEY_MAX_LENGTH,
};
use crate::storage::{ArithOutcome, DeleteOutcome, ItemView, Reserved, SetMode, StoreOutcome};

/// memcached tokenizes at most this many tokens (the last one holds the rest).
const MAX_TOKENS: usize = 24;

pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
pub const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk";
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache";
pub const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object";
const FLUSH_DISABLED: &[u8] = b"CLIENT_ERROR flush_all not allowed";
const BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument";
const BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument";
const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value";
const DELETE_USAGE: &[u8] = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";

/// The space-separated tokens of a line, as memcached's `tokenize_command`
/// sees them: at most `MAX_TOKENS - 1` real tokens.
pub struct Tokens<'a> {
    tok: [&'a [u8]; MAX_TOKENS],
    n: usize,
}

impl<'a> Tokens<'a> {
    // Inlined and built in place so the 400-byte token array is not copied
    // out (profiled: that memcpy cost as much as the scan).
    #[inline(always)]
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            tok: [&[]; MAX_TOKENS],
            n: 0,
        };
        let mut i = 0;
        // One pass over the line (this runs for every non-get request).
        while i < line.len() {
            if line[i] == b' ' {
                i += 1;
                continue;
            }
            let end = i + token_end(&line[i..]);
            t.tok[t.n] = &line[i..end];
            t.n += 1;
            if t.n == MAX_TOKENS - 1 {
                break;
            }
            i = end;
        }
        t
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.tok[i]
    }
    /// memcached's `set_noreply_maybe`: only the last token counts.
    pub fn noreply(&self) -> bool {
        self.n > 0 && self.tok[self.n - 1] == b"noreply"
    }
}

/// One parsed text request. Keys and the multi-get key list borrow the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// get/gets/gat/gats; `keys` is the rest of the line (space-separated).
    Get {
        keys: &'a [u8],
        cas: bool,
        touch: Option<i64>,
    },
    Update {
        key: &'a [u8],
        flags: u32,
        exptime: i64,
        bytes: usize,
        mode: SetMode,
        cas: Option<u64>,
        noreply: bool,
    },
    Delete {
        key: &'a [u8],
        noreply: bool,
    },
    Arith {
        key: &'a [u8],
        incr: bool,
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: &'a [u8],
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay: i64,
        noreply: bool,
    },
    Version,
    Quit,
    Verbosity {
        level: u32,
        noreply: bool,
    },
    MemLimit {
        megabytes: u32,
        noreply: bool,
    },
    /// `shutdown [graceful]`; `valid` is false for any other mode.
    Shutdown {
        graceful: bool,
        valid: bool,
    },
    Stats {
        group: Option<&'a [u8]>,
        /// The token after the group (`stats detail on`).
        arg: Option<&'a [u8]>,
    },
    /// `stats cachedump <class> <limit>`.
    CacheDump {
        class: u32,
        limit: u32,
    },
    /// `slabs reassign <src> <dst>`.
    SlabsReassign {
        src: i64,
        dst: i64,
    },
    /// `slabs automove <level>` (`None`: `slabs automove ratio <r>`).
    SlabsAutomove {
        level: Option<u32>,
        noreply: bool,
    },
    /// `lru_crawler crawl <classes>`.
    LruCrawl {
        classes: &'a [u8],
    },
    /// `lru_crawler metadump <classes>`.
    LruMetadump {
        classes: &'a [u8],
    },
    /// `lru_crawler enable|disable`: the crawler cannot be started or
    /// stopped at run time; answered with memcached's failure lines.
    LruCrawlerToggle {
        enable: bool,
    },
    /// An HTTP request line: memcached closes without a word.
    Http,
    /// A reply decided at parse time (errors), honouring `noreply`.
    Reply {
        msg: &'static [u8],
        noreply: bool,
        /// `flush_all` counts `cmd_flush` even when malformed.
        counts_flush: bool,
    },
}

/// A request answered at parse time with a fixed line (usually an error).
const fn answer(msg: &'static [u8], noreply: bool) -> Request<'static> {
    Request::Reply {
        msg,
        noreply,
        counts_flush: false,
    }
}

const ERROR: Request<'static> = answer(b"ERROR", false);

/// Parses one request line (without its "\r\n").
pub fn parse(line: &[u8]) -> Request<'_> {
    // Retrievals skip full tokenizing: their keys are simply the rest of the line.
    if let Some((cmd, rest)) = next_token(line) {
        match cmd {
            b"get" => return parse_get(rest, false, false),
            b"gets" => return parse_get(rest, true, false),
            b"gat" => return parse_get(rest, false, true),
            b"gats" => return parse_get(rest, true, true),
            _ => {}
        }
    }
    let t = Tokens::new(line);
    if t.is_empty() || t.get(0).len() < 2 {
        return ERROR;
    }
    let n = t.len();
    let noreply = t.noreply();
    match t.get(0) {
        b"set" => parse_update(&t, SetMode::Set, false),
        b"add" => parse_update(&t, SetMode::Add, false),
        b"replace" => parse_update(&t, SetMode::Replace, false),
        b"append" => parse_update(&t, SetMode::Append, false),
        b"prepend" => parse_update(&t, SetMode::Prepend, false),
        b"cas" => parse_update(&t, SetMode::Set, true),
        b"incr" | b"decr" => {
            if n != 3 && n != 4 {
                return ERROR;
            }
            let key = t.get(1);
            if key.len() > KEY_MAX_LENGTH {
                return answer(BAD_FORMAT, noreply);
            }
            match strtoull(t.get(2)) {
                Some(delta) => Request::Arith {
                    key,
                    incr: t.get(0) == b"incr",
                    delta,
                    noreply,
                },
                None => answer(BAD_DELTA, noreply),
            }
        }
        b"delete" => {
            if !(2..=4).contains(&n) {
                return ERROR;
            }
            if n > 2 {
                let hold_is_zero = t.get(2) == b"0";
                let valid =
                    (n == 3 && (hold_is_zero || noreply)) || (n == 4 && hold_is_zero && noreply);
                if !valid {
                    return answer(DELETE_USAGE, noreply);
                }
            }
            let key = t.get(1);
            if key.len() > KEY_MAX_LENGTH {
                return answer(BAD_FORMAT, noreply);
            }
            Request::Delete { key, noreply }
        }
        b"touch" => {
            if n != 3 && n != 4 {
                return ERROR;
            }
            let key = t.get(1);
            if key.len() > KEY_MAX_LENGTH {
                return answer(BAD_FORMAT, noreply);
            }
            match strtol32(t.get(2)) {
                Some(exptime) => Request::Touch {
                    key,
                    exptime,
                    noreply,
                },
                None => answer(BAD_EXPTIME, noreply),
            }
        }
        b"flush_all" => {
            if n > 3 {
                return ERROR;
            }
            let delay = if n != if noreply { 2 } else { 1 } {
                match strtol32(t.get(1)) {
                    Some(d) => d,
                    None => {
                        return Request::Reply {
                            msg: BAD_EXPTIME,
                            noreply,
                            counts_flush: true,
                        }
                    }
                }
            } else {
                0
            };
            Request::FlushAll { delay, noreply }
        }
        b"version" => Request::Version,
        b"quit" => Request::Quit,
        b"verbosity" => {
            if n != 2 && n != 3 {
                return ERROR;
            }
            match strtoul32(t.get(1)) {
                Some(level) => Request::Verbosity { level, noreply },
                None => answer(BAD_FORMAT, noreply),
            }
        }
        b"cache_memlimit" => {
            if n != 2 && n != 3 {
                return ERROR;
            }
            match strtoul32(t.get(1)) {
                Some(megabytes) => Request::MemLimit { megabytes, noreply },
                None => answer(b"ERROR", noreply),
            }
        }
        b"shutdown" => {
            let graceful = n == 2 && t.get(1) == b"graceful";
            Request::Shutdown {
                graceful,
                valid: n == 1 || graceful,
            }
        }
        b"slabs" => parse_slabs(&t),
        b"lru_crawler" => parse_lru_crawler(&t),
        b"stats" if n > 1 && t.get(1) == b"cachedump" => {
            if n < 4 {
                return answer(b"CLIENT_ERROR bad command line", false);
            }
            match (strtoul32(t.get(2)), strtoul32(t.get(3))) {
                (Some(class), Some(limit)) => Request::CacheDump { class, limit },
                _ => answer(BAD_FORMAT, false),
            }
        }
        b"stats" => Request::Stats {
            group: if n > 1 { Some(t.get(1)) } else { None },
            arg: if n > 2 { Some(t.get(2)) } else { None },
        },
        _ if t.get(n - 1).starts_with(b"HTTP/") => Request::Http,
        _ => ERROR,
    }
}

fn parse_slabs<'a>(t: &Tokens<'a>) -> Request<'a> {
    let n = t.len();
    if n == 4 && t.get(1) == b"reassign" {
        return match (strtol32(t.get(2)), strtol32(t.get(3))) {
            (Some(src), Some(dst)) => Request::SlabsReassign { src, dst },
            _ => answer(BAD_FORMAT, false),
        };
    }
    if n >= 3 && t.get(1) == b"automove" {
        let noreply = t.noreply();
        if t.get(2) == b"ratio" {
            // Accepted for compatibility: our automove has no ratio knob.
            let ratio = (n >= 4)
                .then(|| std::str::from_utf8(t.get(3)).ok()?.parse::<f64>().ok())
                .flatten();
            return match ratio {
                Some(_) => Request::SlabsAutomove {
                    level: None,
                    noreply,
                },
                None => answer(b"ERROR", noreply),
            };
        }
        return match strtoul32(t.get(2)) {
            Some(level) => Request::SlabsAutomove {
                level: Some(level),
                noreply,
            },
            None => answer(b"ERROR", noreply),
        };
    }
    ERROR
}

fn parse_lru_crawler<'a>(t: &Tokens<'a>) -> Request<'a> {
    match (t.len(), t.get(1)) {
        (3, b"crawl") => Request::LruCrawl { classes: t.get(2) },
        (3, b"metadump") => Request::LruMetadump { classes: t.get(2) },
        // Pacing knobs of memcached's crawler: validated like memcached and
        // accepted, though ours paces itself.
        (3, b"tocrawl") => match strtoul32(t.get(2)) {
            Some(_) => answer(b"OK", false),
            None => answer(BAD_FORMAT, false),
        },
        (3, b"sleep") => match strtoul32(t.get(2)) {
            Some(us) if us > 1_000_000 => {
                answer(b"CLIENT_ERROR sleep must be one second or less", false)
            }
            Some(_) => answer(b"OK", false),
            None => answer(BAD_FORMAT, false),
        },
        (2, b"enable") => Request::LruCrawlerToggle { enable: true },
        (2, b"disable") => Request::LruCrawlerToggle { enable: false },
        _ => ERROR,
    }
}

/// The first space-separated token of `s` and what follows it.
#[inline]
fn next_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b' ')?;
    let s = &s[start..];
    let end = token_end(s);
    Some((&s[..end], &s[end..]))
}

/// Index of the first ' ' in `s`, or its length.
#[inline]
fn token_end(s: &[u8]) -> usize {
    super::scan::find_byte(s, b' ').unwrap_or(s.len())
}

/// get/gets/gat/gats; `rest` is the line after the command name.
fn parse_get(rest: &[u8], cas: bool, touch: bool) -> Request<'_> {
    let Some((first, after)) = next_token(rest) else {
        return ERROR; // no key (or exptime): memcached wants 2+ tokens
    };
    let (touch, keys) = if touch {
        match strtol32(first) {
            Some(e) => (Some(e), after),
            None => return answer(BAD_EXPTIME, false),
        }
    } else {
        (None, rest)
    };
    let skip = keys.iter().take_while(|&&b| b == b' ').count();
    Request::Get {
        keys: &keys[skip..],
        cas,
        touch,
    }
}

fn parse_update<'a>(t: &Tokens<'a>, mode: SetMode, has_cas: bool) -> Request<'a> {
    let base = if has_cas { 6 } else { 5 };
    if t.len() != base && t.len() != base + 1 {
        return ERROR;
    }
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        return answer(BAD_FORMAT, noreply);
    }
    let (Some(flags), Some(exptime), Some(bytes)) =
        (strtoul32(t.get(2)), strtol32(t.get(3)), strtol32(t.get(4)))
    else {
        return answer(BAD_FORMAT, noreply);
    };
    let cas = if has_cas {
        match strtoull(t.get(5)) {
            Some(c) => Some(c),
            None => return answer(BAD_FORMAT, noreply),
        }
    } else {
        None
    };
    if !(0..=i32::MAX as i64 - 2).contains(&bytes) {
        return answer(BAD_FORMAT, noreply);
    }
    Request::Update {
        key,
        flags,
        exptime,
        bytes: bytes as usize,
        mode,
        cas,
        noreply,
    }
}

// ---------------------------------------------------------------------------
// Reply writing.

#[inline]
fn reply(out: &mut Vec<u8>, noreply: bool, msg: &[u8]) {
    if !noreply {
        out.extend_from_slice(msg);
        out.extend_from_slice(b"\r\n");
    }
}

/// `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`, straight from the
/// item (a large value may go to the socket without a copy, see [`Out`]).
/// `tail` follows the data: "\r\n", or "\r\nEND\r\n" for the last key of a
/// `get` (so a value sent straight to the socket carries the `END` along).
#[inline]
fn write_value(out: &mut Out, key: &[u8], item: &ItemView, cas: bool, tail: &[u8]) {
    let len = item.value_len();
    out.reserve(key.len() + 64);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, item.meta.flags as u64);
    out.push(b' ');
    push_u64(out, len as u64);
    if cas {
        out.push(b' ');
        push_u64(out, item.meta.cas);
    }
    out.extend_from_slice(b"\r\n");
    out.put_value(len, item.value_parts(), tail);
}

/// The text reply to a store's outcome.
fn stored_reply(outcome: StoreOutcome) -> &'static [u8] {
    match outcome {
        StoreOutcome::Stored(_) => b"STORED",
        StoreOutcome::NotStored => b"NOT_STORED",
        StoreOutcome::Exists => b"EXISTS",
        StoreOutcome::NotFound => b"NOT_FOUND",
        StoreOutcome::TooLarge => TOO_LARGE,
        StoreOutcome::NoMemory => NO_MEMORY,
    }
}

/// Completes a storage command whose data block was read into `item` (see
/// [`nread`]): `line` is its request line, which passed every check when
/// it arrived; `tail_ok` says the block ended in "\r\n". Replies as the
/// buffered path does; the item is freed unless stored.
pub fn finish_update(line: &[u8], item: Reserved, tail_ok: bool, out: &mut Out, ctx: &Ctx) {
    let Request::Update {
        key,
        flags,
        exptime,
        mode,
        cas,
        noreply,
        ..
    } = parse(line)
    else {
        debug_assert!(false, "nread for a line that is not a storage command");
        return;
    };
    let mut cmd = Update::new(key, flags, exptime, mode);
    cmd.compare_cas = cas;
    if !tail_ok {
        cmd.bad_data(ctx, item.len());
        reply(out, noreply, BAD_CHUNK);
        return;
    }
    reply(out, noreply, stored_reply(cmd.execute_reserved(ctx, item)));
}

/// Consume `total` bytes of `rest`, swallowing what has not arrived yet.
fn consume_or_swallow(have: usize, total: usize) -> Step {
    if have >= total {
        Step::Done(total)
    } else {
        Step::Swallow {
            consumed: have,
            swallow: total - have,
        }
    }
}

/// Handles one text request: `line` without its terminator, `rest` the input
/// after it. Byte counts in the returned [`Step`] are of `rest` only. A
/// multi-get or a metadump stops once `out` is longer than `stop_at` and
/// answers [`Step::Partial`], keeping its place in `resume` (the
/// session's; 0 when the line starts fresh).
pub fn handle(
    line: &[u8],
    rest: &[u8],
    out: &mut Out,
    ctx: &Ctx,
    resume: &mut usize,
    stop_at: usize,
    nread: nread::Slot,
) -> Step {
    match parse(line) {
        Request::Get { keys, cas, touch } => get(keys, cas, touch, out, ctx, resume, stop_at),
        Request::Update {
            key,
            flags,
            exptime,
            bytes,
            mode,
            cas,
            noreply,
        } => {
            let mut cmd = Update::new(key, flags, exptime, mode);
            cmd.compare_cas = cas;
            let total = bytes + 2;
            if cmd.too_large(ctx, bytes) {
                reply(out, noreply, TOO_LARGE);
                cmd.refuse_too_large(ctx);
                return consume_or_swallow(rest.len(), total);
            }
            if rest.len() < total {
                // A large block goes straight into its item as it arrives.
                let reserve = || cmd.reserve(ctx, bytes);
                return nread::begin(nread, line, rest, bytes, reserve).unwrap_or(Step::NeedMore);
            }
            if &rest[bytes..total] != b"\r\n" {
                cmd.bad_data(ctx, bytes);
                reply(out, noreply, BAD_CHUNK);
                return Step::Done(total);
            }
            reply(out, noreply, stored_reply(cmd.execute(ctx, &rest[..bytes])));
            Step::Done(total)
        }
        Request::Delete { key, noreply } => {
            let msg: &[u8] = match (Delete { key }).execute(ctx) {
                DeleteOutcome::Deleted { .. } => b"DELETED",
                DeleteOutcome::NotFound | DeleteOutcome::Exists => b"NOT_FOUND",
            };
            reply(out, noreply, msg);
            Step::Done(0)
        }
        Request::Arith {
            key,
            incr,
            delta,
            noreply,
        } => {
            match (Arith { key, incr, delta }).execute(ctx) {
                ArithOutcome::Value { value, .. } => {
                    if !noreply {
                        push_u64(out, value);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                ArithOutcome::NotFound => reply(out, noreply, b"NOT_FOUND"),
                ArithOutcome::NonNumeric => reply(out, noreply, NON_NUMERIC),
                ArithOutcome::Exists => reply(out, noreply, b"EXISTS"),
                ArithOutcome::NoMemory => reply(out, noreply, b"SERVER_ERROR out of memory"),
            }
            Step::Done(0)
        }
        Request::Touch {
            key,
            exptime,
            noreply,
        } => {
            let hit = Touch::new(key, exptime).execute(ctx);
            reply(out, noreply, if hit { b"TOUCHED" } else { b"NOT_FOUND" });
            Step::Done(0)
        }
        Request::FlushAll { delay, noreply } => {
            FlushAll::count(ctx);
            if FlushAll::allowed(ctx) {
                FlushAll { delay }.execute(ctx);
                reply(out, noreply, b"OK");
            } else {
                reply(out, noreply, FLUSH_DISABLED);
            }
            Step::Done(0)
        }
        Request::Version => {
            out.extend_from_slice(b"VERSION ");
            out.extend_from_slice(crate::VERSION.as_bytes());
            out.extend_from_slice(b"\r\n");
            Step::Done(0)
        }
        Request::Quit => Step::Close(0),
        Request::Verbosity { level, noreply } => {
            Verbosity { level }.execute(ctx);
            reply(out, noreply, b"OK");
            Step::Done(0)
        }
        Request::MemLimit { megabytes, noreply } => {
            let msg: &[u8] = match (MemLimit { megabytes }).execute(ctx) {
                MemLimitOutcome::Ok => b"OK",
                MemLimitOutcome::TooSmall => {
                    b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"
                }
                MemLimitOutcome::NotMegabytes => {
                    b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
                }
            };
            reply(out, noreply, msg);
            Step::Done(0)
        }
        Request::Shutdown { .. } if !ctx.shared.config.enable_shutdown => {
            reply(out, false, b"ERROR: shutdown not enabled");
            Step::Done(0)
        }
        Request::Shutdown { valid: false, .. } => {
            reply(out, false, b"CLIENT_ERROR invalid shutdown mode");
            Step::Done(0)
        }
        Request::Shutdown { .. } => {
            admin::shutdown(ctx);
            Step::Close(0)
        }
        Request::Stats { group, arg } => {
            stats(group, arg, out, ctx);
            Step::Done(0)
        }
        Request::CacheDump { class, limit } => {
            cachedump(class, limit, out, ctx);
            Step::Done(0)
        }
        Request::SlabsReassign { src, dst } => {
            let msg = admin::slabs_reassign(ctx, src as i32, dst as i32);
            reply(out, false, msg.as_bytes());
            Step::Done(0)
        }
        Request::SlabsAutomove { level, noreply } => {
            let ok = level.is_none_or(|l| admin::slabs_automove(ctx, l));
            reply(out, noreply, if ok { b"OK" } else { b"ERROR" });
            Step::Done(0)
        }
        Request::LruCrawl { classes } => {
            reply(out, false, crawl_reply(admin::lru_crawl(ctx, classes)));
            Step::Done(0)
        }
        Request::LruMetadump { classes } => metadump(classes, out, ctx, resume, stop_at),
        Request::LruCrawlerToggle { enable } => {
            // memcached's answers when the thread is already in that state
            // (enable) or cannot be stopped (disable).
            let running = ctx.shared.config.lru_crawler;
            let msg: &[u8] = match (enable, running) {
                (true, true) => b"ERROR failed to start lru crawler thread",
                (false, false) => b"OK",
                (true, false) => b"ERROR failed to start lru crawler thread",
                (false, true) => b"ERROR failed to stop lru crawler thread",
            };
            reply(out, false, msg);
            Step::Done(0)
        }
        Request::Http => Step::Close(0),
        Request::Reply {
            msg,
            noreply,
            counts_flush,
        } => {
            if counts_flush {
                FlushAll::count(ctx);
                // `-F` is checked before the delay argument.
                if !FlushAll::allowed(ctx) {
                    reply(out, noreply, FLUSH_DISABLED);
                    return Step::Done(0);
                }
            }
            reply(out, noreply, msg);
            Step::Done(0)
        }
    }
}

/// get/gets/gat/gats over every key of the line. A key over 250 bytes aborts
/// the request and, like memcached, drops the values already written for it.
/// The next key of a multi-get's key list at or after byte `pos`, and the
/// offset just past it.
#[inline]
fn next_key(keys: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = keys.get(pos..)?;
    let start = rest.iter().position(|&b| b != b' ')?;
    let len = token_end(&rest[start..]);
    let end = pos + start + len;
    Some((&keys[pos + start..end], end))
}

/// get/gets/gat/gats. Streams: once `out` is longer than `stop_at` with keys
/// left, remembers in `resume` where the next key starts and answers
/// [`Step::Partial`]; the next call (same line) continues there, so every
/// key is looked up, counted and touched once and the reply is the same
/// bytes as if written whole.
fn get(
    keys: &[u8],
    cas: bool,
    touch: Option<i64>,
    out: &mut Out,
    ctx: &Ctx,
    resume: &mut usize,
    stop_at: usize,
) -> Step {
    let cmd = match touch {
        Some(e) => Retrieve::get_and_touch(e),
        None => Retrieve::get(),
    };
    let start = out.len();
    let fresh = *resume == 0;
    let mut pos = std::mem::take(resume);
    // Values sent straight to the socket cannot be taken back either: on a
    // fresh line, look for a long key before the first one may leave.
    let mut may_send = !fresh;
    let mut ahead = super::lookahead::Lookahead::new(pos);
    while let Some((key, end)) = next_key(keys, pos) {
        ahead.advance_with(keys, pos, &ctx.shared.store, |b| {
            next_key(b, 0).map(|(k, end)| (Some(k), end))
        });
        if key.len() > KEY_MAX_LENGTH {
            // Only on a fresh line: keys are checked before the first stop.
            debug_assert!(fresh);
            return bad_key(out, start);
        }
        let last = next_key(keys, end).is_none();
        let tail: &[u8] = if last { b"\r\nEND\r\n" } else { b"\r\n" };
        let sent = cmd.execute(ctx, key, |item| {
            if !may_send && out.wants_direct(item.value_len(), last) {
                if first_long_key(keys, end).is_some() {
                    return false; // the whole reply becomes an error
                }
                may_send = true;
            }
            write_value(out, key, item, cas, tail);
            true
        });
        if last && sent.is_some() {
            return Step::Done(0); // `END` went with the value
        }
        if sent == Some(false) {
            // Look the rest up (counted and touched, like memcached) up to
            // the long key, then answer the error.
            let bad = first_long_key(keys, end).unwrap_or(keys.len());
            let mut p = end;
            while let Some((key, e)) = next_key(keys, p).filter(|&(_, e)| e <= bad) {
                cmd.execute(ctx, key, |_| ());
                p = e;
            }
            return bad_key(out, start);
        }
        pos = end;
        if out.len() > stop_at && next_key(keys, pos).is_some() {
            // memcached answers a line with a key over 250 bytes with one
            // error and none of its values (earlier keys still counted).
            // Streamed values cannot be taken back, so check the remaining
            // keys before anything leaves this call (once per line).
            if let Some(bad) = (fresh && !may_send)
                .then(|| first_long_key(keys, pos))
                .flatten()
            {
                let mut p = pos;
                while let Some((key, end)) = next_key(keys, p).filter(|&(_, e)| e <= bad) {
                    cmd.execute(ctx, key, |_| ());
                    p = end;
                }
                return bad_key(out, start);
            }
            *resume = pos;
            return Step::Partial;
        }
    }
    out.extend_from_slice(b"END\r\n");
    Step::Done(0)
}

/// Drops a multi-get's reply written so far (from `start`) for the error.
fn bad_key(out: &mut Vec<u8>, start: usize) -> Step {
    out.truncate(start);
    reply(out, false, BAD_FORMAT);
    Step::Done(0)
}

/// Offset of the start of the first key after `pos` longer than memcached
/// accepts, if any.
fn first_long_key(keys: &[u8], mut pos: usize) -> Option<usize> {
    while let Some((key, end)) = next_key(keys, pos) {
        if key.len() > KEY_MAX_LENGTH {
            return Some(end - key.len());
        }
        pos = end;
    }
    None
}

fn crawl_reply(outcome: CrawlOutcome) -> &'static [u8] {
    match outcome {
        CrawlOutcome::Ok => b"OK",
        CrawlOutcome::Disabled => b"CLIENT_ERROR lru crawler disabled",
        CrawlOutcome::BadClass => b"BADCLASS invalid class id",
        CrawlOutcome::NotStarted => b"NOTSTARTED no items to crawl",
        CrawlOutcome::NotAllowed => b"ERROR metadump not allowed",
    }
}

/// `lru_crawler metadump`: one `key=… exp=… la=… cas=… fetch=… cls=…
/// size=…` line per live item (newline only, as memcached writes them;
/// key URI-encoded, times as unix time, `exp=-1` for never), then `END`.
/// Streams like a multi-get: once `out` is past `stop_at` the walk's cursor
/// goes to `resume` and the same line continues on the next call, so a dump
/// of any size holds at most about `stop_at` of output.
fn metadump(
    classes: &[u8],
    out: &mut Vec<u8>,
    ctx: &Ctx,
    resume: &mut usize,
    stop_at: usize,
) -> Step {
    let started = crate::clock::process_started();
    let cursor = std::mem::take(resume) as u64;
    let walked = admin::lru_metadump(ctx, classes, cursor, |row| {
        out.extend_from_slice(b"key=");
        uri_encode(row.key, out);
        out.extend_from_slice(b" exp=");
        if row.exptime == 0 {
            out.extend_from_slice(b"-1");
        } else {
            push_u64(out, row.exptime as u64 + started);
        }
        out.extend_from_slice(b" la=");
        push_u64(out, row.atime as u64 + started);
        out.extend_from_slice(b" cas=");
        push_u64(out, row.cas);
        out.extend_from_slice(if row.fetched {
            b" fetch=yes"
        } else {
            b" fetch=no"
        });
        out.extend_from_slice(b" cls=");
        push_u64(out, row.class as u64);
        out.extend_from_slice(b" size=");
        push_u64(out, row.size);
        out.push(b'\n');
        out.len() <= stop_at
    });
    match walked {
        Err(e) => reply(out, false, crawl_reply(e)),
        Ok(0) => out.extend_from_slice(b"END\r\n"),
        Ok(next) => {
            *resume = next as usize;
            return Step::Partial;
        }
    }
    Step::Done(0)
}

/// memcached's `uriencode`: bytes other than ASCII letters, digits and
/// `-._~` become `%XX`.
fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// memcached caps a cachedump reply at 2 MB.
const CACHEDUMP_MAX: usize = 2 << 20;

/// `ITEM <key> [<bytes> b; <exptime> s]` lines, exptime as unix time (0 = never).
fn cachedump(class: u32, limit: u32, out: &mut Vec<u8>, ctx: &Ctx) {
    if ctx.shared.config.disable_dumping {
        reply(out, false, b"CLIENT_ERROR stats cachedump not allowed");
        return;
    }
    if class > u8::MAX as u32 {
        reply(out, false, b"CLIENT_ERROR Illegal slab id");
        return;
    }
    let start = out.len();
    let started = crate::clock::process_started();
    ctx.shared
        .store
        .cachedump(class as usize, limit as usize, |key, bytes, exptime| {
            out.extend_from_slice(b"ITEM ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" [");
            push_u64(out, bytes as u64);
            out.extend_from_slice(b" b; ");
            push_u64(
                out,
                if exptime == 0 {
                    0
                } else {
                    exptime as u64 + started
                },
            );
            out.extend_from_slice(b" s]\r\n");
            out.len() - start < CACHEDUMP_MAX
        });
    out.extend_from_slice(b"END\r\n");
}

fn stats(group: Option<&[u8]>, arg: Option<&[u8]>, out: &mut Vec<u8>, ctx: &Ctx) {
    use crate::stats as st;
    match group {
        None => st::write_general(out, ctx),
        Some(b"reset") => {
            admin::stats_reset(ctx);
            reply(out, false, b"RESET");
        }
        Some(b"settings") => st::write_settings(out, ctx),
        Some(b"detail") => {
            let detail = &ctx.shared.server_stats.detail;
            match arg {
                Some(b"on") => {
                    detail.set_enabled(true);
                    reply(out, false, b"OK");
                }
                Some(b"off") => {
                    detail.set_enabled(false);
                    reply(out, false, b"OK");
                }
                Some(b"dump") => detail.dump(out),
                _ => reply(out, false, b"CLIENT_ERROR usage: stats detail on|off|dump"),
            }
        }
        Some(b"conns") => {
            let rows = ctx
                .shared
                .control
                .get()
                .map(|c| c.conn_stats())
                .unwrap_or_default();
            st::write_rows(out, &rows);
        }
        Some(g) => {
            let rows = std::str::from_utf8(g).ok().and_then(|g| {
                ctx.shared
                    .store
                    .stats_group_with(g, &|cls| st::class_rows(ctx, cls))
            });
            match rows {
                Some(rows) => st::write_rows(out, &rows),
                None => reply(out, false, b"ERROR"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_end_finds_the_first_space() {
        // Every length up to 40 and every position of the first space
        // (including none), with other spaces after it and bytes whose
        // SWAR arithmetic borrows (0x00, 0x21, 0xff) around it.
        for len in 0..40usize {
            for first in 0..=len {
                let mut s: Vec<u8> = (0..len).map(|i| [b'k', 0, 0x21, 0xff][i % 4]).collect();
                if first < len {
                    s[first] = b' ';
                    for j in (first + 1..len).step_by(3) {
                        s[j] = b' ';
                    }
                }
                assert_eq!(token_end(&s), first, "{s:?}");
            }
        }
    }

    #[test]
    fn tokens_split_on_spaces_only() {
        let t = Tokens::new(b"  get a\tb   c ");
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1), b"a\tb");
        assert_eq!(t.get(2), b"c");
        let long: Vec<u8> = (0..40).flat_map(|_| b"k ".iter().copied()).collect();
        assert_eq!(Tokens::new(&long).len(), MAX_TOKENS - 1);
    }

    #[test]
    fn parses_storage_lines() {
        assert_eq!(
            parse(b"set k 3 10 5"),
            Request::Update {
                key: b"k",
                flags: 3,
                exptime: 10,
                bytes: 5,
                mode: SetMode::Set,
                cas: None,
                noreply: false
            }
        );
        assert_eq!(
            parse(b"cas k 0 0 1 99 noreply"),
            Request::Update {
                key: b"k",
                flags: 0,
                exptime: 0,
                bytes: 1,
                mode: SetMode::Set,
                cas: Some(99),
                noreply: true
            }
        );
        // An unknown sixth token is ignored, not taken for noreply.
        assert!(matches!(
            parse(b"set k 0 0 5 junk"),
            Request::Update { noreply: false, .. }
        ));
        assert_eq!(parse(b"set k 0 0"), ERROR);
        assert_eq!(parse(b"set k 0 0 5 noreply x"), ERROR);
        assert_eq!(parse(b"cas k 0 0 1"), ERROR);
        assert_eq!(parse(b"set k -1 0 1"), answer(BAD_FORMAT, false));
        assert_eq!(parse(b"set k 0 0 -1"), answer(BAD_FORMAT, false));
        assert_eq!(parse(b"set k 0 abc 1 noreply"), answer(BAD_FORMAT, true));
        let long_key = [b'k'; 251];
        let mut line = b"set ".to_vec();
        line.extend_from_slice(&long_key);
        line.extend_from_slice(b" 0 0 1");
        assert_eq!(parse(&line), answer(BAD_FORMAT, false));
    }

    #[test]
    fn parses_get_lines() {
        assert_eq!(
            parse(b"get a b  c"),
            Request::Get {
                keys: b"a b  c",
                cas: false,
                touch: None
            }
        );
        assert_eq!(
            parse(b"gats 100 a"),
            Request::Get {
                keys: b"a",
                cas: true,
                touch: Some(100)
            }
        );
        assert_eq!(
            parse(b"gat 0"),
            Request::Get {
                keys: b"",
                cas: false,
                touch: Some(0)
            }
        );
        assert_eq!(parse(b"gat x a"), answer(BAD_EXPTIME, false));
        assert_eq!(parse(b"get"), ERROR);
        assert_eq!(parse(b"GET a"), ERROR);
        assert_eq!(parse(b""), ERROR);
        assert_eq!(parse(b"x"), ERROR);
    }

    #[test]
    fn parses_other_commands() {
        assert_eq!(
            parse(b"delete k 0"),
            Request::Delete {
                key: b"k",
                noreply: false
            }
        );
        assert_eq!(
            parse(b"delete k 0 noreply"),
            Request::Delete {
                key: b"k",
                noreply: true
            }
        );
        assert_eq!(parse(b"delete k 5"), answer(DELETE_USAGE, false));
        assert_eq!(parse(b"delete k 5 noreply"), answer(DELETE_USAGE, true));
        assert_eq!(parse(b"delete a b c d"), ERROR);
        assert_eq!(
            parse(b"incr k +3"),
            Request::Arith {
                key: b"k",
                incr: true,
                delta: 3,
                noreply: false
            }
        );
        assert_eq!(parse(b"decr k -1"), answer(BAD_DELTA, false));
        assert_eq!(parse(b"incr k"), ERROR);
        assert_eq!(parse(b"touch k x"), answer(BAD_EXPTIME, false));
        assert_eq!(
            parse(b"flush_all noreply"),
            Request::FlushAll {
                delay: 0,
                noreply: true
            }
        );
        assert_eq!(
            parse(b"flush_all 1 2"),
            Request::FlushAll {
                delay: 1,
                noreply: false
            }
        );
        assert_eq!(parse(b"flush_all 1 2 3"), ERROR);
        assert!(matches!(
            parse(b"flush_all abc"),
            Request::Reply {
                counts_flush: true,
                ..
            }
        ));
        assert_eq!(parse(b"version x"), Request::Version);
        assert_eq!(parse(b"quit x"), Request::Quit);
        assert_eq!(parse(b"verbosity"), ERROR);
        assert_eq!(parse(b"cache_memlimit abc"), answer(b"ERROR", false));
        assert_eq!(parse(b"GET / HTTP/1.1"), Request::Http);
        assert_eq!(
            parse(b"slabs reassign -1 5"),
            Request::SlabsReassign { src: -1, dst: 5 }
        );
        assert_eq!(parse(b"slabs reassign a 5"), answer(BAD_FORMAT, false));
        assert_eq!(parse(b"slabs reassign 1"), ERROR);
        assert_eq!(parse(b"slabs automove x"), answer(b"ERROR", false));
        assert_eq!(
            parse(b"lru_crawler crawl 1,2"),
            Request::LruCrawl { classes: b"1,2" }
        );
        assert_eq!(parse(b"lru_crawler crawl"), ERROR);
        assert_eq!(
            parse(b"stats"),
            Request::Stats {
                group: None,
                arg: None
            }
        );
    }
}
