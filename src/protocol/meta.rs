//! Meta protocol framing and parsing (`mg ms md ma mn me`), as memcached 1.6.
//!
//! [`handle`] takes one command line (without "\r\n") and the input after it,
//! parses the line into a [`MetaRequest`] — pure, over byte slices, no
//! allocation — frames `ms` data blocks, and hands the request to
//! `command::meta`, which runs it and writes the reply. Error replies and
//! their precedence follow memcached 1.6.18 byte for byte (checked against
//! the real server in tests/meta.rs).

use crate::command::meta::{self as exec, MetaRequest, KEY_MAX, MAX_TOKENS};
use crate::command::Ctx;
use crate::protocol::{nread, number, Out, Step};
use crate::storage::Reserved;

/// memcached rejects a meta line with this many tokens or more (its limit of
/// 20 counts a terminal empty token).
const MAX_OPT_TOKENS: usize = 20;

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";

/// Splits a line on spaces like memcached's tokenizer (runs of spaces are one
/// separator). Returns the number of tokens; past `MAX_TOKENS` the count
/// saturates, which is already "too many" for every meta command.
fn tokenize<'a>(line: &'a [u8], toks: &mut [&'a [u8]; MAX_TOKENS]) -> usize {
    let mut n = 0;
    for t in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        if n == MAX_TOKENS {
            return n + 1;
        }
        toks[n] = t;
        n += 1;
    }
    n
}

/// Handles one meta command. `line` excludes its "\r\n"; `rest` is the input
/// after it (where an `ms` data block starts).
pub fn handle(line: &[u8], rest: &[u8], out: &mut Out, ctx: &Ctx, nread: nread::Slot) -> Step {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut toks: [&[u8]; MAX_TOKENS] = [&[]; MAX_TOKENS];
    let n = tokenize(line, &mut toks);
    let ntoks = n.min(MAX_TOKENS);
    let toks = &toks[..ntoks];
    match toks.first().copied() {
        Some(b"mn") => {
            out.extend_from_slice(b"MN\r\n");
            Step::Done(0)
        }
        Some(b"mg") => {
            let mut req = MetaRequest::new(toks.get(1).copied().unwrap_or_default());
            if parse_front(&mut req, toks, n, out, &MG) {
                exec::get(&req, out, ctx);
            }
            Step::Done(0)
        }
        Some(b"md") => {
            let mut req = MetaRequest::new(toks.get(1).copied().unwrap_or_default());
            if parse_front(&mut req, toks, n, out, &MD) {
                exec::delete(&req, out, ctx);
            }
            Step::Done(0)
        }
        Some(b"ma") => {
            let mut req = MetaRequest::new(toks.get(1).copied().unwrap_or_default());
            if parse_front(&mut req, toks, n, out, &MA) {
                match req.mode {
                    None | Some(b'I') | Some(b'+') | Some(b'D') | Some(b'-') => {
                        exec::arith(&req, out, ctx)
                    }
                    _ => out.extend_from_slice(b"CLIENT_ERROR invalid mode for ma M token\r\n"),
                }
            }
            Step::Done(0)
        }
        Some(b"ms") => handle_set(toks, n, line, Block::Rest(rest, nread), out, ctx),
        Some(b"me") => {
            handle_debug(toks, out, ctx);
            Step::Done(0)
        }
        _ => {
            out.extend_from_slice(b"ERROR\r\n");
            Step::Done(0)
        }
    }
}

/// How `mg`, `md` and `ma` differ in rejecting a line (memcached's wording
/// and order of checks differ per command).
struct Front {
    too_long: &'static [u8],
    /// md and ma answer every flag error with one message.
    generic_flag_error: bool,
    /// mg and ma check the opaque length only after running (command::meta does it).
    check_opaque: bool,
}

const MG: Front = Front {
    too_long: b"CLIENT_ERROR options flags are too long\r\n",
    generic_flag_error: false,
    check_opaque: false,
};
const MD: Front = Front {
    too_long: b"CLIENT_ERROR options flags too long\r\n",
    generic_flag_error: true,
    check_opaque: true,
};
const MA: Front = Front {
    too_long: b"CLIENT_ERROR options flags too long\r\n",
    generic_flag_error: true,
    check_opaque: false,
};

/// Common front of `mg`, `md`, `ma`: token count, key length, flags, opaque,
/// parsed into `req` (made by the caller with the key, `toks[1]`: filled in
/// place because a request returned by value was copied on every command).
/// Writes the error and returns false when the line is rejected.
fn parse_front<'a>(
    req: &mut MetaRequest<'a>,
    toks: &'a [&'a [u8]],
    n: usize,
    out: &mut Vec<u8>,
    front: &Front,
) -> bool {
    if toks.len() < 2 {
        out.extend_from_slice(b"ERROR\r\n");
        return false;
    }
    if toks[1].len() > KEY_MAX {
        out.extend_from_slice(BAD_FORMAT);
        return false;
    }
    if n >= MAX_OPT_TOKENS {
        out.extend_from_slice(front.too_long);
        return false;
    }
    if let Err(e) = parse_flags(req, &toks[2..]) {
        if front.generic_flag_error {
            out.extend_from_slice(b"CLIENT_ERROR invalid or duplicate flag\r\n");
        } else {
            out.extend_from_slice(error_message(e));
        }
        return false;
    }
    if front.check_opaque && !exec::opaque_ok(req) {
        out.extend_from_slice(exec::OPAQUE_TOO_LONG);
        return false;
    }
    true
}

/// A flag error's message, or the command's default one.
fn error_message(e: Option<&'static [u8]>) -> &'static [u8] {
    e.unwrap_or(BAD_FORMAT)
}

/// Where an `ms` data block is.
enum Block<'a, 's> {
    /// In the input after the line (maybe not all of it yet); where to
    /// park a large block that is read into its item instead.
    Rest(&'a [u8], nread::Slot<'s>),
    /// Read into an item; whether it ended in "\r\n".
    Read(Reserved, bool),
}

/// Completes an `ms` whose data block was read into `item` (see [`nread`]):
/// `line` passed every check when it arrived, so this replies exactly as
/// the buffered path does.
pub fn finish_set(line: &[u8], item: Reserved, tail_ok: bool, out: &mut Out, ctx: &Ctx) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut toks: [&[u8]; MAX_TOKENS] = [&[]; MAX_TOKENS];
    let n = tokenize(line, &mut toks);
    let toks = &toks[..n.min(MAX_TOKENS)];
    handle_set(toks, n, line, Block::Read(item, tail_ok), out, ctx);
}

/// `ms <key> <datalen> <flags>*` followed by the data block.
fn handle_set(
    toks: &[&[u8]],
    n: usize,
    line: &[u8],
    block_at: Block,
    out: &mut Vec<u8>,
    ctx: &Ctx,
) -> Step {
    let rest: &[u8] = match &block_at {
        Block::Rest(rest, _) => rest,
        Block::Read(..) => &[],
    };
    if toks.len() < 2 {
        out.extend_from_slice(b"ERROR\r\n");
        return Step::Done(0);
    }
    if toks[1].len() > KEY_MAX || toks.len() == 2 {
        out.extend_from_slice(BAD_FORMAT);
        return Step::Done(0);
    }
    if n >= MAX_OPT_TOKENS {
        out.extend_from_slice(b"CLIENT_ERROR options flags too long\r\n");
        return Step::Done(0);
    }
    let vlen = match parse_i32(toks[2]) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => {
            out.extend_from_slice(BAD_FORMAT);
            return Step::Done(0);
        }
    };
    let block = vlen + 2;
    // From here on an error still swallows the data block.
    let swallow = |out: &mut Vec<u8>, msg: &[u8]| {
        out.extend_from_slice(msg);
        if rest.len() >= block {
            Step::Done(block)
        } else {
            Step::Swallow {
                consumed: rest.len(),
                swallow: block - rest.len(),
            }
        }
    };
    let mut req = MetaRequest::new(toks[1]);
    if let Err(e) = parse_flags(&mut req, &toks[3..]) {
        return swallow(out, error_message(e));
    }
    if !matches!(
        req.mode,
        None | Some(b'E') | Some(b'A') | Some(b'P') | Some(b'R') | Some(b'S')
    ) {
        return swallow(out, b"CLIENT_ERROR invalid mode for ms M token\r\n");
    }
    if vlen > ctx.shared.store.config().item_size_max {
        exec::drop_old_value(&req, ctx);
        return swallow(out, b"SERVER_ERROR object too large for cache\r\n");
    }
    if !exec::opaque_ok(&req) {
        return swallow(out, exec::OPAQUE_TOO_LONG);
    }
    let slot = match block_at {
        Block::Read(item, tail_ok) => {
            if tail_ok {
                exec::set_reserved(&req, item, out, ctx);
            } else {
                out.extend_from_slice(b"CLIENT_ERROR bad data chunk\r\n");
            }
            return Step::Done(0);
        }
        Block::Rest(_, slot) => slot,
    };
    if rest.len() < block {
        // A large block goes straight into its item as it arrives.
        let reserve = || exec::reserve(&req, vlen, ctx);
        return nread::begin(slot, line, rest, vlen, reserve).unwrap_or(Step::NeedMore);
    }
    if &rest[vlen..block] != b"\r\n" {
        out.extend_from_slice(b"CLIENT_ERROR bad data chunk\r\n");
        return Step::Done(block);
    }
    exec::set(&req, &rest[..vlen], out, ctx);
    Step::Done(block)
}

/// `me <key> [b]`.
fn handle_debug(toks: &[&[u8]], out: &mut Vec<u8>, ctx: &Ctx) {
    if toks.len() < 2 || toks[1].len() > KEY_MAX {
        out.extend_from_slice(BAD_FORMAT);
        return;
    }
    let mut req = MetaRequest::new(toks[1]);
    if toks.len() >= 3 && toks[2] == b"b" && !decode_key(&mut req) {
        out.extend_from_slice(BAD_FORMAT);
        return;
    }
    exec::debug(&req, out, ctx);
}

/// Parses flag tokens into `req`, like memcached's `_meta_flag_preparse`:
/// an unknown or repeated flag stops at once; a bad token value is noted
/// and parsing goes on (the last message wins). `Err(None)` means "use the
/// command's default message".
fn parse_flags<'a>(
    req: &mut MetaRequest<'a>,
    flags: &'a [&'a [u8]],
) -> Result<(), Option<&'static [u8]>> {
    let mut seen = [false; 128];
    let mut has_error = false;
    let mut errstr: Option<&'static [u8]> = None;
    // a bad value sets has_error; only some set the message (F does not)
    let mut error = |msg: Option<&'static [u8]>| {
        has_error = true;
        if msg.is_some() {
            errstr = msg;
        }
    };
    const BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format\r\n";
    for &tok in flags {
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err(Some(b"CLIENT_ERROR duplicate flag\r\n"));
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        match o {
            b'b' => {
                if !decode_key(req) {
                    error(Some(b"CLIENT_ERROR error decoding key\r\n"));
                }
            }
            b'N' | b'T' | b'R' => match parse_i32(arg) {
                Some(v) => {
                    let v = Some(v as i64);
                    match o {
                        b'N' => req.vivify = v,
                        b'T' => req.ttl = v,
                        _ => req.recache = v,
                    }
                }
                None => error(Some(BAD_TOKEN)),
            },
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' | b'l' => {}
            b'v' => req.value = true,
            b'u' => req.no_bump = true,
            b'q' => req.quiet = true,
            b'I' => req.invalidate = true,
            // newer memcached (1.6.2x): md x removes the value, keeps the item
            b'x' => req.remove_value = true,
            b'F' => match parse_u64(arg) {
                // memcached truncates client flags to 32 bits
                Some(v) => req.client_flags = Some(v as u32),
                None => error(None),
            },
            b'C' => match parse_u64(arg) {
                Some(v) => req.compare_cas = Some(v),
                None => error(Some(BAD_TOKEN)),
            },
            // newer memcached (1.6.2x): explicit new CAS value
            b'E' => match parse_u64(arg) {
                Some(v) => req.new_cas = Some(v),
                None => error(Some(BAD_TOKEN)),
            },
            b'M' => {
                if tok.len() != 2 {
                    error(Some(b"CLIENT_ERROR incorrect length for M token\r\n"));
                } else {
                    req.mode = Some(tok[1]);
                }
            }
            b'J' => match parse_u64(arg) {
                Some(v) => req.initial = v,
                None => error(Some(b"CLIENT_ERROR invalid numeric initial value\r\n")),
            },
            b'D' => match parse_u64(arg) {
                Some(v) => req.delta = v,
                None => error(Some(b"CLIENT_ERROR invalid numeric delta value\r\n")),
            },
            _ => return Err(Some(b"CLIENT_ERROR invalid flag\r\n")),
        }
    }
    req.set_flags(flags);
    if has_error {
        Err(errstr)
    } else {
        Ok(())
    }
}

/// memcached's `safe_strtol` into an `int32_t`. The text protocol's rules
/// (`number`), so C whitespace around a number is accepted as memcached does.
fn parse_i32(s: &[u8]) -> Option<i32> {
    number::strtol32(s).map(|v| v as i32)
}

/// memcached's `safe_strtoull`: a sign is accepted, "-1" refused.
fn parse_u64(s: &[u8]) -> Option<u64> {
    number::strtoull(s)
}

// ---- base64 (keys with the `b` flag) ----

/// Decodes the request's key from base64 in place (`b`); false if invalid.
fn decode_key(req: &mut MetaRequest) -> bool {
    let raw = req.raw_key();
    match base64_decode(raw, req.key_buf_mut()) {
        Some(len) => {
            req.set_binary_key_len(len);
            true
        }
        None => false,
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Decodes base64 the way memcached does: characters outside the alphabet
/// are skipped, the rest must come in groups of four, and decoding stops at
/// the first group with padding. Returns the decoded length, or None for
/// invalid input or an empty result.
pub fn base64_decode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let count = src.iter().filter(|&&c| b64_value(c).is_some()).count();
    if count == 0 || count % 4 != 0 || count / 4 * 3 > dst.len() {
        return None;
    }
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pos = 0;
    let mut pad = 0;
    for &c in src {
        let Some(v) = b64_value(c) else { continue };
        if c == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            dst[pos] = (block[0] << 2) | (block[1] >> 4);
            dst[pos + 1] = (block[1] << 4) | (block[2] >> 2);
            dst[pos + 2] = (block[2] << 6) | block[3];
            pos += 3;
            n = 0;
            if pad > 0 {
                match pad {
                    1 => pos -= 1,
                    2 => pos -= 2,
                    _ => return None,
                }
                break;
            }
        }
    }
    (pos > 0).then_some(pos)
}

/// Appends the padded base64 encoding of `src` to `out`.
pub fn base64_encode(src: &[u8], out: &mut Vec<u8>) {
    for chunk in src.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        out.push(B64[(b[0] >> 2) as usize]);
        out.push(B64[(((b[0] & 0x03) << 4) | (b[1] >> 4)) as usize]);
        out.push(if chunk.len() > 1 {
            B64[(((b[1] & 0x0f) << 2) | (b[2] >> 6)) as usize]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            B64[(b[2] & 0x3f) as usize]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Shared;
    use crate::config::Config;
    use crate::stats::WorkerStats;

    struct T {
        shared: Shared,
        stats: WorkerStats,
    }

    impl T {
        fn new() -> T {
            T {
                shared: Shared::new(Config::default()),
                stats: WorkerStats::default(),
            }
        }
        /// Runs every request in `input` through `handle`, like the framing does.
        fn run(&self, input: &[u8]) -> String {
            let ctx = Ctx {
                shared: &self.shared,
                stats: &self.stats,
            };
            let mut out = Vec::new();
            let mut pos = 0;
            while let Some(nl) = memchr::memchr(b'\n', &input[pos..]) {
                let line = &input[pos..pos + nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let rest = &input[pos + nl + 1..];
                match handle(line, rest, &mut Out::buffered(&mut out), &ctx, None) {
                    Step::Done(n) | Step::Close(n) => pos += nl + 1 + n,
                    Step::NeedMore => break,
                    Step::Swallow { consumed, swallow } => pos += nl + 1 + consumed + swallow,
                    Step::Partial => unreachable!("only multi-gets stream"),
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
    }

    #[test]
    fn base64_round_trip_and_memcached_quirks() {
        let mut out = Vec::new();
        base64_encode(b"foob", &mut out);
        assert_eq!(out, b"Zm9vYg==");
        let mut buf = [0u8; KEY_MAX];
        assert_eq!(base64_decode(b"Zm9vYg==", &mut buf), Some(4));
        assert_eq!(&buf[..4], b"foob");
        assert_eq!(base64_decode(b"Zm9vYg=", &mut buf), None);
        assert_eq!(base64_decode(b"Zm9vYg", &mut buf), None);
        assert_eq!(base64_decode(b"A===", &mut buf), None);
        assert_eq!(base64_decode(b"IA==", &mut buf), Some(1));
        assert_eq!(buf[0], b' ');
        for len in 0..10 {
            let src: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let mut enc = Vec::new();
            base64_encode(&src, &mut enc);
            if len > 0 {
                let n = base64_decode(&enc, &mut buf).unwrap();
                assert_eq!(&buf[..n], &src[..]);
            }
        }
    }

    #[test]
    fn get_set_flags_and_errors() {
        let t = T::new();
        assert_eq!(t.run(b"mn\r\n"), "MN\r\n");
        assert_eq!(t.run(b"ms foo 3 T0 F5\r\nbar\r\n"), "HD\r\n");
        assert_eq!(
            t.run(b"mg foo v k t f s h O123\r\n"),
            "VA 3 kfoo t-1 f5 s3 h0 O123\r\nbar\r\n"
        );
        assert_eq!(t.run(b"mg foo\r\n"), "HD\r\n");
        assert_eq!(
            t.run(b"mg missing v\r\nmg missing v q\r\nmn\r\n"),
            "EN\r\nMN\r\n"
        );
        assert_eq!(t.run(b"mg missing k Oab\r\n"), "EN kmissing Oab\r\n");
        assert_eq!(t.run(b"mg\r\n"), "ERROR\r\n");
        assert_eq!(t.run(b"mg foo zz\r\n"), "CLIENT_ERROR invalid flag\r\n");
        assert_eq!(t.run(b"mg foo v v\r\n"), "CLIENT_ERROR duplicate flag\r\n");
        assert_eq!(
            t.run(b"mg foo T\r\n"),
            "CLIENT_ERROR bad token in command line format\r\n"
        );
        assert_eq!(
            t.run(b"md foo T\r\n"),
            "CLIENT_ERROR invalid or duplicate flag\r\n"
        );
        assert_eq!(
            t.run(b"ms k 3 MZ\r\nbar\r\n"),
            "CLIENT_ERROR invalid mode for ms M token\r\n"
        );
        assert_eq!(
            t.run(b"ms k 3\r\nbarx\r\n"),
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
        );
        assert_eq!(
            t.run(b"ms k abc\r\n"),
            "CLIENT_ERROR bad command line format\r\n"
        );
        assert_eq!(
            t.run(b"mg foo P P P P P P P P P P P P P P P P P P\r\n"),
            "CLIENT_ERROR options flags are too long\r\n"
        );
    }

    #[test]
    fn ms_framing_steps() {
        let t = T::new();
        let ctx = Ctx {
            shared: &t.shared,
            stats: &t.stats,
        };
        let mut out = Vec::new();
        assert_eq!(
            handle(b"ms k 5", b"ab", &mut Out::buffered(&mut out), &ctx, None),
            Step::NeedMore
        );
        assert!(out.is_empty());
        assert_eq!(
            handle(
                b"ms k 5",
                b"abcde\r\nmn\r\n",
                &mut Out::buffered(&mut out),
                &ctx,
                None
            ),
            Step::Done(7)
        );
        assert_eq!(out, b"HD\r\n");
        out.clear();
        assert_eq!(
            handle(
                b"ms k 5 zz",
                b"ab",
                &mut Out::buffered(&mut out),
                &ctx,
                None
            ),
            Step::Swallow {
                consumed: 2,
                swallow: 5
            }
        );
        assert_eq!(out, b"CLIENT_ERROR invalid flag\r\n");
        out.clear();
        assert_eq!(
            handle(
                b"ms k 2000000",
                b"",
                &mut Out::buffered(&mut out),
                &ctx,
                None
            ),
            Step::Swallow {
                consumed: 0,
                swallow: 2000002
            }
        );
        assert_eq!(out, b"SERVER_ERROR object too large for cache\r\n");
    }

    #[test]
    fn stale_win_and_vivify() {
        let t = T::new();
        t.run(b"ms sw 3 T100\r\nold\r\n");
        assert_eq!(t.run(b"md sw I T30\r\n"), "HD\r\n");
        let a = t.run(b"mg sw v t\r\n");
        assert_eq!(a, "VA 3 t30 X W\r\nold\r\n");
        assert_eq!(t.run(b"mg sw v\r\n"), "VA 3 Z X\r\nold\r\n");
        assert_eq!(t.run(b"mg viv N30 s t\r\n"), "HD s0 t30 W\r\n");
        assert_eq!(t.run(b"mg viv N30 s\r\n"), "HD s0 Z\r\n");
        assert_eq!(t.run(b"ma cnt N0 J10 v t\r\n"), "VA 2 t-1\r\n10\r\n");
        assert_eq!(t.run(b"ma cnt MD D3 v\r\n"), "VA 1\r\n7\r\n");
        assert_eq!(t.run(b"ma cnt q\r\nma nope q\r\nmn\r\n"), "NF\r\nMN\r\n");
    }

    /// Random lines and data built from meta tokens never panic and always
    /// answer or wait for more input (no unwrap on client bytes).
    #[test]
    fn random_input_never_panics() {
        let t = T::new();
        let ctx = Ctx {
            shared: &t.shared,
            stats: &t.stats,
        };
        let pieces: &[&[u8]] = &[
            b"mg",
            b"ms",
            b"md",
            b"ma",
            b"mn",
            b"me",
            b"k",
            b"Zm9v",
            b"====",
            b"v",
            b"q",
            b"b",
            b"N",
            b"N-1",
            b"T",
            b"T99999999999",
            b"R5",
            b"C",
            b"C0",
            b"E",
            b"E7",
            b"F-1",
            b"M",
            b"ME",
            b"MZ",
            b"J",
            b"D99999999999999999999",
            b"O",
            b"Ox",
            b"I",
            b"x",
            b"t",
            b"c",
            b"s",
            b"h",
            b"l",
            b"u",
            b"f",
            b"0",
            b"3",
            b"-1",
            b"2147483647",
            b"\xff",
            b"\t",
            b"",
            b" ",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut line = Vec::new();
            for _ in 0..(next() % 8) {
                line.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
                if next() % 4 != 0 {
                    line.push(b' ');
                }
            }
            let rest: Vec<u8> = (0..next() % 8)
                .map(|_| b"ab\r\n"[(next() % 4) as usize])
                .collect();
            let mut out = Vec::new();
            match handle(&line, &rest, &mut Out::buffered(&mut out), &ctx, None) {
                Step::NeedMore => assert!(out.is_empty(), "{line:?}"),
                Step::Done(n) | Step::Close(n) => {
                    assert!(n <= rest.len(), "{line:?}");
                    assert!(!out.is_empty() || line_is_quiet(&line), "{line:?}");
                }
                Step::Swallow { consumed, .. } => assert!(consumed <= rest.len()),
                Step::Partial => panic!("only multi-gets stream: {line:?}"),
            }
        }
    }

    /// A quiet command may legitimately answer nothing.
    fn line_is_quiet(line: &[u8]) -> bool {
        line.split(|&b| b == b' ').any(|t| t == b"q")
    }
}
