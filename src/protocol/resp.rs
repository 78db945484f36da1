//! RESP2, the Redis serialization protocol: request framing and reply
//! encoding for the planned `--resp-port` adapter. Pure functions over byte
//! slices like the rest of `protocol`; nothing calls them yet.
//!
//! Requests come in two forms, told apart by their first byte as Redis does:
//! * **multibulk** (`*`): `*<n>\r\n`, then n × `$<len>\r\n<bytes>\r\n`. What
//!   every client library sends. Arguments borrow from the input, so the
//!   only allocation is growth of the caller's `args` vector.
//! * **inline** (anything else): one line of words ending in "\n" or "\r\n",
//!   as typed into telnet. Unquoted words borrow too. A line holding `"` or
//!   `'` follows Redis's quoting rules (`"a b"`, escapes like `\n` and
//!   `\x41`), whose words are not slices of the input, so [`parse_command`]
//!   only checks it and answers [`Parse::Quoted`]; [`split_quoted`] then
//!   copies the words out. That path is for people at a terminal and
//!   allocates per word.
//!
//! Bad input is handled as Redis 7.0 handles it (checked by hand against
//! redis-server 7.0.15; the bytes sent and the replies seen are in the
//! tests): the same checks in the same order, with the same messages, after
//! which the caller replies `-ERR Protocol error: <msg>` and closes. Like
//! Redis, the byte after a header's '\r' and the two bytes after a bulk's
//! data are skipped without checking that they are "\n" / "\r\n".
//! Where a NUL byte hides the rest of Redis's buffer from its C-string
//! searches (7.0.15 then waits for a '\r' or '\n' it already has, until the
//! 64 KB limit), we go by the bytes: a NUL in a header is a bad length or
//! type byte, and a NUL ends an inline line's words, as a NUL ends a
//! memcached text command.
//!
//! **Cost of incomplete input.** The parser keeps no state between calls,
//! so a command still arriving is parsed again from its start each time.
//! A call costs one parse per argument *header* already present plus, while
//! a header or inline line waits for its end, a scan of at most
//! `max_inline` bytes; a bulk's data is never scanned, only its length
//! compared with what has arrived. So a 1 MB value arriving in 64 KB pieces
//! costs 16 calls of a few header parses each. What can add up is a command
//! of very many small arguments arriving in many small reads (each call
//! re-reads up to `max_args` headers); a caller can avoid it by calling
//! again only after a sizeable read. Memory is the caller's input buffer,
//! which an unfinished command can grow to `max_args` × (`max_bulk` + a
//! header): the adapter bounds that, as Redis bounds its query buffer.
//!
//! Because the result on a prefix of the input is either `Incomplete` or
//! the same as on the whole input, the answer never depends on how the
//! bytes were split into reads.

use crate::protocol::{number, scan};
use memchr::memchr2;

/// Cap on a multibulk count: 1024 × 1024 arguments, Redis's until 7.0
/// raised it to 2^31 − 1 (redis/redis#9528; 7.0.15 waits after
/// `*2147483647` and refuses `*2147483648`). The lower cap bounds how many
/// headers an unfinished command makes each call re-read, and no command
/// the adapter serves needs more.
pub const MAX_ARGS: usize = 1024 * 1024;

/// Redis's `PROTO_INLINE_MAX_SIZE` (64 KB): the longest inline line (not
/// counting its "\r\n"), and the most bytes a `*` or `$` header line may
/// take without its '\r'.
pub const MAX_INLINE: usize = 64 * 1024;

/// Redis's default `proto-max-bulk-len` (512 MB).
pub const MAX_BULK: usize = 512 * 1024 * 1024;

/// Protocol error messages, as Redis words them.
pub const INVALID_MULTIBULK: &str = "invalid multibulk length";
pub const INVALID_BULK: &str = "invalid bulk length";
pub const TOO_BIG_INLINE: &str = "too big inline request";
pub const TOO_BIG_MBULK_COUNT: &str = "too big mbulk count string";
pub const TOO_BIG_BULK_COUNT: &str = "too big bulk count string";
pub const UNBALANCED_QUOTES: &str = "unbalanced quotes in request";

/// Bounds on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most arguments in a multibulk command (more: "invalid multibulk length").
    pub max_args: usize,
    /// Longest bulk argument (longer: "invalid bulk length"). The adapter
    /// passes memcached's item size max (`-I`).
    pub max_bulk: usize,
    /// Longest inline line not counting its "\r\n" or "\n", and the most
    /// bytes a header line may take without its '\r' ("too big ...").
    pub max_inline: usize,
}

impl Limits {
    /// [`MAX_ARGS`] and [`MAX_INLINE`], with `max_bulk` as the longest bulk.
    pub const fn with_max_bulk(max_bulk: usize) -> Limits {
        Limits {
            max_args: MAX_ARGS,
            max_bulk,
            max_inline: MAX_INLINE,
        }
    }
}

impl Default for Limits {
    /// [`MAX_ARGS`], [`MAX_BULK`] and [`MAX_INLINE`].
    fn default() -> Limits {
        Limits::with_max_bulk(MAX_BULK)
    }
}

/// What [`parse_command`] found at the start of its input.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// Not a whole request yet: nothing consumed; call again with more bytes.
    Incomplete,
    /// A command of `len` bytes; `args` holds its arguments (at least one).
    Command { len: usize },
    /// `len` bytes Redis skips without a reply: `*0`, `*-1` (any count
    /// below 1), or an inline line with no words.
    Empty { len: usize },
    /// An inline line with quotes, `len` bytes with its newline; its
    /// arguments come from [`split_quoted`]`(&input[..len], ..)`.
    Quoted { len: usize },
    /// A protocol error: reply with [`push_protocol_error`] and close.
    Error { msg: &'static str },
    /// The protocol error "expected '$', got '<got>'", kept apart so that
    /// reporting the byte needs no allocation: reply with
    /// [`push_expected_dollar`] and close.
    ExpectedDollar { got: u8 },
}

/// Frames the request at the start of `input`. On [`Parse::Command`],
/// `args` holds its arguments, borrowed from `input`; on anything else it
/// is left empty. Never reads past `input`, never panics.
pub fn parse_command<'a>(input: &'a [u8], args: &mut Vec<&'a [u8]>, limits: &Limits) -> Parse {
    args.clear();
    let parsed = match input.first() {
        None => Parse::Incomplete,
        Some(b'*') => multibulk(input, args, limits),
        Some(_) => inline(input, args, limits),
    };
    if !matches!(parsed, Parse::Command { .. }) {
        args.clear();
    }
    parsed
}

/// `*<n>\r\n` then n bulks.
fn multibulk<'a>(input: &'a [u8], args: &mut Vec<&'a [u8]>, limits: &Limits) -> Parse {
    let cr = match header_end(input, 0, limits.max_inline, TOO_BIG_MBULK_COUNT) {
        Ok(cr) => cr,
        Err(p) => return p,
    };
    let count = match parse_len(&input[1..cr]) {
        Some(n) if n <= 0 => return Parse::Empty { len: cr + 2 },
        Some(n) if n as u64 <= limits.max_args as u64 => n as u64,
        _ => {
            return Parse::Error {
                msg: INVALID_MULTIBULK,
            }
        }
    };
    let mut pos = cr + 2;
    for _ in 0..count {
        match bulk(input, pos, limits) {
            Ok((arg, next)) => {
                args.push(arg);
                pos = next;
            }
            Err(p) => return p,
        }
    }
    Parse::Command { len: pos }
}

/// One `$<len>\r\n<bytes>\r\n` at `pos`: the bytes and where the next
/// argument starts.
fn bulk<'a>(input: &'a [u8], pos: usize, limits: &Limits) -> Result<(&'a [u8], usize), Parse> {
    let cr = header_end(input, pos, limits.max_inline, TOO_BIG_BULK_COUNT)?;
    // Redis looks at the type byte only once the whole header line is in.
    if input[pos] != b'$' {
        return Err(Parse::ExpectedDollar { got: input[pos] });
    }
    let len = parse_len(&input[pos + 1..cr])
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= limits.max_bulk)
        .ok_or(Parse::Error { msg: INVALID_BULK })?;
    let start = cr + 2;
    // The data and the two bytes after it must all have arrived.
    let avail = input.len() - start;
    if avail < 2 || avail - 2 < len {
        return Err(Parse::Incomplete);
    }
    Ok((&input[start..start + len], start + len + 2))
}

/// The '\r' ending the header line that starts at `pos`. As in Redis, the
/// line counts once one more byte has come after the '\r', and a line
/// without one in its first `max` bytes is the error `too_long`. Looking
/// no further than that bounds the work per call, and keeps the answer
/// the same however the bytes are split.
fn header_end(
    input: &[u8],
    pos: usize,
    max: usize,
    too_long: &'static str,
) -> Result<usize, Parse> {
    let rest = &input[pos..];
    let window = &rest[..rest.len().min(max.saturating_add(1))];
    match scan::find_byte(window, b'\r') {
        Some(i) if i + 1 < rest.len() => Ok(pos + i),
        None if rest.len() > max => Err(Parse::Error { msg: too_long }),
        _ => Err(Parse::Incomplete),
    }
}

/// A length the way Redis's `string2ll` reads it: optional '-', then digits
/// with no leading zero ("0" alone is fine, "-0", "+1", "01", " 1" and ""
/// are not), fitting an i64.
fn parse_len(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if neg {
        // i64::MIN's magnitude is one more than i64::MAX.
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// A line of words ending in "\n" (a "\r" before it is dropped). Redis's
/// cut for a long line depends on how its 16 KB reads fall; ours is the
/// line itself: at most `max_inline` bytes before its "\r\n" (65536 bytes
/// and "\r\n" pass on both, 65537 bytes without a newline fail on both).
fn inline<'a>(input: &'a [u8], args: &mut Vec<&'a [u8]>, limits: &Limits) -> Parse {
    // The line may take `max_inline` bytes plus its "\r\n": a newline
    // further on would be too late anyway.
    let window = &input[..input.len().min(limits.max_inline.saturating_add(2))];
    let Some(nl) = scan::find_byte(window, b'\n') else {
        // Wait, unless no newline can make the line short enough.
        let text = input.strip_suffix(b"\r").unwrap_or(input);
        return if text.len() > limits.max_inline {
            Parse::Error {
                msg: TOO_BIG_INLINE,
            }
        } else {
            Parse::Incomplete
        };
    };
    let len = nl + 1;
    let text = line_text(&input[..len]);
    if text.len() > limits.max_inline {
        return Parse::Error {
            msg: TOO_BIG_INLINE,
        };
    }
    let line = before_nul(text);
    if memchr2(b'"', b'\'', line).is_some() {
        return if quotes_balanced(line) {
            Parse::Quoted { len }
        } else {
            Parse::Error {
                msg: UNBALANCED_QUOTES,
            }
        };
    }
    let mut i = skip_blanks(line, 0);
    while i < line.len() {
        let start = i;
        while i < line.len() && !ends_word(line[i]) {
            i += 1;
        }
        args.push(&line[start..i]);
        i = skip_blanks(line, i);
    }
    if args.is_empty() {
        Parse::Empty { len }
    } else {
        Parse::Command { len }
    }
}

/// An inline line without its "\n" or "\r\n".
fn line_text(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The part of a line Redis's C-string splitter sees: up to the first NUL.
fn before_nul(line: &[u8]) -> &[u8] {
    match memchr::memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    }
}

/// Skipped between words: C's `isspace`.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Ends an unquoted word. Redis skips vertical tab and form feed between
/// words but keeps them inside one.
fn ends_word(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_blanks(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && is_blank(line[i]) {
        i += 1;
    }
    i
}

/// Whether [`split_quoted`] would accept `line`: its dry run, keeping nothing.
fn quotes_balanced(line: &[u8]) -> bool {
    let mut i = skip_blanks(line, 0);
    while i < line.len() {
        match quoted_word(line, i, |_| {}) {
            Some(next) => i = skip_blanks(line, next),
            None => return false,
        }
    }
    true
}

/// The arguments of a [`Parse::Quoted`] line (`line` is `&input[..len]`),
/// unquoted and unescaped into `args` (cleared first). Fails with
/// [`UNBALANCED_QUOTES`] only for a line `parse_command` did not accept.
pub fn split_quoted(line: &[u8], args: &mut Vec<Vec<u8>>) -> Result<(), &'static str> {
    args.clear();
    let line = before_nul(line_text(line));
    let mut i = skip_blanks(line, 0);
    while i < line.len() {
        let mut word = Vec::new();
        i = quoted_word(line, i, |b| word.push(b)).ok_or(UNBALANCED_QUOTES)?;
        args.push(word);
        i = skip_blanks(line, i);
    }
    Ok(())
}

/// One word at `i` (not a blank) of a line that may hold quotes, its bytes
/// fed to `push`. Returns where the word ends, or None if a quote is left
/// open or a closing quote is not followed by a blank. Quotes may start
/// mid-word (`a"b c"` is `ab c`). In double quotes `\n \r \t \b \a` and
/// `\xHH` are escapes and a backslash keeps any other byte; in single
/// quotes only `\'` is.
fn quoted_word(line: &[u8], mut i: usize, mut push: impl FnMut(u8)) -> Option<usize> {
    let mut quote = None;
    loop {
        let Some(&c) = line.get(i) else {
            return quote.is_none().then_some(i);
        };
        match quote {
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                c if ends_word(c) => return Some(i),
                c => push(c),
            },
            Some(q) if c == q => {
                return match line.get(i + 1) {
                    Some(&b) if !is_blank(b) => None,
                    _ => Some(i + 1),
                };
            }
            Some(b'"') if c == b'\\' && i + 1 < line.len() => {
                let (b, used) = unescape(&line[i + 1..]);
                push(b);
                i += used;
            }
            Some(b'\'') if c == b'\\' && line.get(i + 1) == Some(&b'\'') => {
                push(b'\'');
                i += 1;
            }
            Some(_) => push(c),
        }
        i += 1;
    }
}

/// The byte a double-quoted backslash escape stands for, and how many
/// bytes after the backslash it takes.
fn unescape(rest: &[u8]) -> (u8, usize) {
    match rest {
        [b'x', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
            ((hex_digit(*h) << 4) | hex_digit(*l), 3)
        }
        [b'n', ..] => (b'\n', 1),
        [b'r', ..] => (b'\r', 1),
        [b't', ..] => (b'\t', 1),
        [b'b', ..] => (0x08, 1),
        [b'a', ..] => (0x07, 1),
        [c, ..] => (*c, 1),
        [] => (b'\\', 0),
    }
}

fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Whether a command name `arg` is `name`, ignoring ASCII case as Redis does
/// (`get`, `GET` and `gEt` are one command).
#[inline]
pub fn command_is(arg: &[u8], name: &[u8]) -> bool {
    arg.eq_ignore_ascii_case(name)
}

/// `+<text>\r\n`, e.g. `+OK`.
pub fn push_simple(out: &mut Vec<u8>, text: &[u8]) {
    push_line(out, b'+', text);
}

/// `-<text>\r\n`; `text` carries its own code, e.g. `ERR unknown command`.
pub fn push_error(out: &mut Vec<u8>, text: &[u8]) {
    push_line(out, b'-', text);
}

/// `-ERR Protocol error: <msg>\r\n`, sent before closing on [`Parse::Error`].
pub fn push_protocol_error(out: &mut Vec<u8>, msg: &str) {
    out.extend_from_slice(b"-ERR Protocol error: ");
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-ERR Protocol error: expected '$', got '<got>'\r\n`, sent before closing
/// on [`Parse::ExpectedDollar`]. The byte goes out raw, a CR or LF as a
/// space, as Redis writes it.
pub fn push_expected_dollar(out: &mut Vec<u8>, got: u8) {
    out.extend_from_slice(b"-ERR Protocol error: expected '$', got '");
    out.push(if got == b'\r' || got == b'\n' {
        b' '
    } else {
        got
    });
    out.extend_from_slice(b"'\r\n");
}

/// A one-line reply. A CR or LF in `text` would end the reply early and
/// leave the client out of step, so each becomes a space, as Redis does in
/// its errors.
fn push_line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    let start = out.len();
    out.extend_from_slice(text);
    sanitize(out, start);
    out.extend_from_slice(b"\r\n");
}

fn sanitize(out: &mut [u8], from: usize) {
    for b in &mut out[from..] {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
}

/// `:<v>\r\n`.
pub fn push_int(out: &mut Vec<u8>, v: i64) {
    out.push(b':');
    number::push_i64(out, v);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn push_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    push_bulk_header(out, bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n` alone, for a value written after it in pieces (straight
/// from item memory); the caller then writes the `len` bytes and "\r\n".
pub fn push_bulk_header(out: &mut Vec<u8>, len: usize) {
    push_count(out, b'$', len);
}

/// `$-1\r\n`: the null bulk (a missing key).
pub fn push_null_bulk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `*<n>\r\n`, followed by the n elements.
pub fn push_array_header(out: &mut Vec<u8>, n: usize) {
    push_count(out, b'*', n);
}

/// `<kind><n>\r\n`: the header of a bulk string or an array.
fn push_count(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    number::push_u64(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// `*-1\r\n`: the null array.
pub fn push_null_array(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*-1\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Small limits so the boundaries are cheap to reach.
    const SMALL: Limits = Limits {
        max_args: 3,
        max_bulk: 10,
        max_inline: 16,
    };

    /// Parses with `limits`; returns the result and the arguments it found.
    fn parse_with(input: &[u8], limits: &Limits) -> (Parse, Vec<Vec<u8>>) {
        let mut args = Vec::new();
        let p = parse_command(input, &mut args, limits);
        (p, args.iter().map(|a| a.to_vec()).collect())
    }

    fn parse(input: &[u8]) -> (Parse, Vec<Vec<u8>>) {
        parse_with(input, &Limits::default())
    }

    fn words(ws: &[&[u8]]) -> Vec<Vec<u8>> {
        ws.iter().map(|w| w.to_vec()).collect()
    }

    /// A multibulk request, the way client libraries write one.
    fn multibulk_of(args: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        push_array_header(&mut v, args.len());
        for a in args {
            push_bulk(&mut v, a);
        }
        v
    }

    fn error(msg: &'static str) -> Parse {
        Parse::Error { msg }
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let set = multibulk_of(&[b"SET", b"key", b"v\r\n\0\xff*$"]);
        for input in [
            set,
            multibulk_of(&[b"GET", b""]),
            b"*0\r\n".to_vec(),
            b"PING\r\n".to_vec(),
            b"  get   key \n".to_vec(),
        ] {
            let whole = parse(&input);
            assert!(
                matches!(whole.0, Parse::Command { len } | Parse::Empty { len } if len == input.len()),
                "{whole:?}"
            );
            for i in 0..input.len() {
                assert_eq!(parse(&input[..i]), (Parse::Incomplete, vec![]), "{i}");
            }
        }
    }

    #[test]
    fn pipelined_requests_have_exact_lengths() {
        let reqs: Vec<(Vec<u8>, Parse, Vec<Vec<u8>>)> = vec![
            (
                multibulk_of(&[b"GET", b"k1"]),
                Parse::Command { len: 21 },
                words(&[b"GET", b"k1"]),
            ),
            (b"*0\r\n".to_vec(), Parse::Empty { len: 4 }, vec![]),
            (
                b"incr n\n".to_vec(),
                Parse::Command { len: 7 },
                words(&[b"incr", b"n"]),
            ),
            (b"*-1\r\n".to_vec(), Parse::Empty { len: 5 }, vec![]),
            (b"\r\n".to_vec(), Parse::Empty { len: 2 }, vec![]),
            (
                multibulk_of(&[b"SET", b"k2", b"hello"]),
                Parse::Command { len: 32 },
                words(&[b"SET", b"k2", b"hello"]),
            ),
            (
                b"PING\r\n".to_vec(),
                Parse::Command { len: 6 },
                words(&[b"PING"]),
            ),
        ];
        let input: Vec<u8> = reqs.iter().flat_map(|r| r.0.clone()).collect();
        let mut pos = 0;
        for (bytes, want, want_args) in &reqs {
            assert_eq!(parse(&input[pos..]), (*want, want_args.clone()));
            pos += bytes.len();
        }
        assert_eq!(pos, input.len());
        assert_eq!(parse(&input[pos..]).0, Parse::Incomplete);
    }

    #[test]
    fn bulks_are_binary_safe() {
        let value = b"\r\n\0*1\r\n$3\r\n\xff\xfe\n\r";
        let input = multibulk_of(&[b"SET", b"\0k\r\n", value]);
        assert_eq!(
            parse(&input),
            (
                Parse::Command { len: input.len() },
                words(&[b"SET", b"\0k\r\n", value])
            )
        );
        let input = multibulk_of(&[b"SET", b"k", b""]);
        assert_eq!(parse(&input).1, words(&[b"SET", b"k", b""]));
    }

    #[test]
    fn a_large_bulk_arrives_in_pieces() {
        let value = vec![b'v'; 1 << 20];
        let input = multibulk_of(&[b"SET", b"big", &value]);
        let mut args = Vec::new();
        let limits = Limits::with_max_bulk(1 << 20);
        let mut have = 0;
        while have < input.len() {
            have = (have + (64 << 10)).min(input.len());
            let p = parse_command(&input[..have], &mut args, &limits);
            if have < input.len() {
                assert_eq!(p, Parse::Incomplete);
            } else {
                assert_eq!(p, Parse::Command { len: input.len() });
                assert_eq!(args[2].len(), 1 << 20);
            }
        }
    }

    // Replies quoted in the comments below are what redis-server 7.0.15
    // sent for the same bytes, one connection each; "closed" means it then
    // closed the connection, "waits" that it sent nothing and kept it open.

    #[test]
    fn inline_commands() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"PING\r\n", &[b"PING"]), // +PONG
            (b"PING\n", &[b"PING"]),   // +PONG
            (b"ping\r\n", &[b"ping"]), // +PONG
            // "FOO a b" below stands for Redis's "-ERR unknown command 'FOO',
            // with args beginning with: 'a' 'b' ", which lists the words.
            (b"  FOO   a   b  \r\n", &[b"FOO", b"a", b"b"]), // FOO a b
            (b"FOO a\tb\r\n", &[b"FOO", b"a", b"b"]),        // FOO a b
            (b"FOO a\rb\r\n", &[b"FOO", b"a", b"b"]),        // FOO a b
            (b"FOO a\r\r\n", &[b"FOO", b"a"]),               // FOO a
            // \v and \f are skipped between words but stay inside one.
            (b"FOO \x0bhello\r\n", &[b"FOO", b"hello"]), // FOO hello
            (b"FOO a\x0bb\r\n", &[b"FOO", b"a\x0bb"]),   // FOO a\vb
            (b"FOO a\x0cb\r\n", &[b"FOO", b"a\x0cb"]),   // FOO a\fb
            // Only a leading '*' makes a multibulk.
            (b"$4\r\n", &[b"$4"]), // unknown command '$4'
            (b":1\r\n", &[b":1"]), // unknown command ':1'
            (b"\x80\r\n", &[b"\x80"]),
            // Redis waits for ever here (its search for '\n' stops at the
            // NUL); we end the words at the NUL, like memcached's text.
            (b"FOO a\0b c\r\n", &[b"FOO", b"a"]),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input),
                (Parse::Command { len: input.len() }, words(want)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // "\r\n\n PING\r\n" got one +PONG: blank lines are skipped.
        for blank in [&b"\n"[..], b"\r\n", b"   \t \r\n", b"\0PING\r\n"] {
            assert_eq!(parse(blank), (Parse::Empty { len: blank.len() }, vec![]));
        }
        assert_eq!(parse(b"FOO a\r\r").0, Parse::Incomplete); // waits
    }

    #[test]
    fn quoted_inline_lines() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            // SET then GET: +OK $3 "a b"; SET z "" then STRLEN z: +OK :0.
            (b"SET q \"a b\"\r\n", &[b"SET", b"q", b"a b"]),
            (b"SET z \"\"\r\n", &[b"SET", b"z", b""]),
            // FOO 'a b' 'c d' 'xA\nq'
            (
                b"FOO \"a b\" 'c d' \"x\\x41\\n\\q\"\r\n",
                &[b"FOO", b"a b", b"c d", b"xA\nq"],
            ),
            (
                b"X \"\\x41\\x4a\\r\\t\\b\\a\\\\\\\"\"\n",
                &[b"X", b"AJ\r\t\x08\x07\\\""],
            ),
            (b"FOO \"\\x4\"\r\n", &[b"FOO", b"x4"]), // FOO 'x4'
            (b"FOO 'it\\'s' 'a\\nb'\r\n", &[b"FOO", b"it's", b"a\\nb"]), // FOO 'it's' 'a\nb'
            (b"FOO \"\" ''\r\n", &[b"FOO", b"", b""]), // FOO '' ''
            (b"FOO a\"b c\"\r\n", &[b"FOO", b"ab c"]), // FOO 'ab c'
            (b"FOO \"a\"\x0bb\r\n", &[b"FOO", b"a", b"b"]), // FOO 'a' 'b'
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), (Parse::Quoted { len: input.len() }, vec![]));
            let mut args = vec![b"stale".to_vec()];
            assert_eq!(split_quoted(input, &mut args), Ok(()));
            assert_eq!(args, words(want), "{:?}", String::from_utf8_lossy(input));
        }
        // Each: "-ERR Protocol error: unbalanced quotes in request", closed.
        for bad in [
            &b"FOO \"abc\r\n"[..],
            b"FOO \"a\"b\r\n",
            b"FOO don't\r\n",
            b"FOO \"a\\\r\n",
            b"X 'abc\r\n",
            // Redis waits for ever on this one (see the NUL above).
            b"FOO \"a\0b\"\r\n",
        ] {
            assert_eq!(parse(bad), (error(UNBALANCED_QUOTES), vec![]));
            assert_eq!(split_quoted(bad, &mut Vec::new()), Err(UNBALANCED_QUOTES));
        }
    }

    #[test]
    fn protocol_errors() {
        // Each: "-ERR Protocol error: <msg>\r\n", closed.
        let cases: &[(&[u8], Parse)] = &[
            (b"*abc\r\n", error(INVALID_MULTIBULK)),
            (b"*\r\n", error(INVALID_MULTIBULK)),
            (b"*+1\r\n", error(INVALID_MULTIBULK)),
            (b"* 1\r\n", error(INVALID_MULTIBULK)),
            (b"*1 \r\n", error(INVALID_MULTIBULK)),
            (b"*01\r\n", error(INVALID_MULTIBULK)),
            (b"*-0\r\n", error(INVALID_MULTIBULK)),
            (b"*99999999999999999999\r\n", error(INVALID_MULTIBULK)),
            (b"*1\r\n$abc\r\n", error(INVALID_BULK)),
            (b"*1\r\n$-1\r\n", error(INVALID_BULK)),
            (b"*1\r\n$04\r\nPING\r\n", error(INVALID_BULK)),
            (b"*1\r\n$\r\n", error(INVALID_BULK)),
            // "expected '$', got 'x'" and so on; Redis writes '\r' and '\n'
            // as a space (see encoders_are_byte_exact) and 0xff raw.
            (b"*1\r\nx\r\n", Parse::ExpectedDollar { got: b'x' }),
            (b"*1\r\n%\r\n", Parse::ExpectedDollar { got: b'%' }),
            (b"*1\r\n\r\n", Parse::ExpectedDollar { got: b'\r' }),
            (b"*1\r\n\n\r\n", Parse::ExpectedDollar { got: b'\n' }),
            (b"*1\r\n\xff\r\n", Parse::ExpectedDollar { got: 0xff }),
            (
                b"*2\r\n$4\r\nPING\r\n:1\r\n",
                Parse::ExpectedDollar { got: b':' },
            ),
            // Redis waits for ever on these two (its search for '\r' stops
            // at the NUL); we answer at once.
            (b"*1\0\r\n", error(INVALID_MULTIBULK)),
            (b"*1\r\n\0\r\n", Parse::ExpectedDollar { got: 0 }),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input),
                (*want, vec![]),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Redis waits for the header's '\r' and one byte more before it
        // looks at the '$' (waits on "*1\r\nx", "*1\r", "*1\r\n$4\r").
        for input in [&b"*1\r\nx"[..], b"*1\r", b"*1\r\n$4\r"] {
            assert_eq!(parse(input).0, Parse::Incomplete);
        }
    }

    #[test]
    fn counts_below_one_are_skipped() {
        // "*0\r\nPING\r\n", "*-1\r\nPING\r\n", "*-5\r\nPING\r\n": one +PONG.
        for input in [&b"*0\r\n"[..], b"*-1\r\n", b"*-5\r\n"] {
            assert_eq!(parse(input), (Parse::Empty { len: input.len() }, vec![]));
        }
    }

    #[test]
    fn the_bytes_after_cr_and_after_data_are_not_checked() {
        // +PONG for each; the second is followed by "*1\r\n$4\r\nPING\r\n"
        // (+PONG +PONG), so Redis really skipped just the two bytes.
        for input in [
            &b"*1\rX$4\r\nPING\r\n"[..],
            b"*1\r\n$4\rXPING\r\n",
            b"*1\r\n$4\r\nPINGxy",
        ] {
            assert_eq!(
                parse(input),
                (Parse::Command { len: 14 }, words(&[b"PING"]))
            );
        }
    }

    #[test]
    fn limits_at_the_boundary_and_one_over() {
        let p = |input: &[u8]| parse_with(input, &SMALL).0;
        // Argument count.
        assert_eq!(p(b"*3\r\n"), Parse::Incomplete);
        assert_eq!(p(b"*4\r\n"), error(INVALID_MULTIBULK));
        // Bulk length.
        assert_eq!(p(b"*1\r\n$10\r\n"), Parse::Incomplete);
        assert_eq!(p(b"*1\r\n$11\r\n"), error(INVALID_BULK));
        // Inline line: 16 bytes, not counting "\r\n".
        let mut line = vec![b'a'; 16];
        assert_eq!(p(&line), Parse::Incomplete);
        line.push(b'\r');
        assert_eq!(p(&line), Parse::Incomplete);
        line.push(b'\n');
        assert_eq!(p(&line), Parse::Command { len: 18 });
        line.remove(16);
        assert_eq!(p(&line), Parse::Command { len: 17 });
        line.insert(0, b'a');
        assert_eq!(p(&line), error(TOO_BIG_INLINE));
        assert_eq!(p(&line[..17]), error(TOO_BIG_INLINE));
        line.insert(17, b'\r');
        assert_eq!(p(&line), error(TOO_BIG_INLINE));
        // Header lines waiting for their '\r'.
        let mut count = b"*".to_vec();
        count.resize(16, b'1');
        assert_eq!(p(&count), Parse::Incomplete);
        count.push(b'1');
        assert_eq!(p(&count), error(TOO_BIG_MBULK_COUNT));
        count.extend_from_slice(b"\r\n");
        assert_eq!(p(&count), error(TOO_BIG_MBULK_COUNT));
        let mut len = b"*1\r\n$".to_vec();
        len.resize(4 + 16, b'1');
        assert_eq!(p(&len), Parse::Incomplete);
        len.push(b'1');
        assert_eq!(p(&len), error(TOO_BIG_BULK_COUNT));

        // Redis's own numbers.
        let d = |input: &[u8]| parse(input).0;
        assert_eq!(d(b"*1048576\r\n"), Parse::Incomplete);
        // 7.0.15 waits here (see MAX_ARGS); older Redis refused it too.
        assert_eq!(d(b"*1048577\r\n"), error(INVALID_MULTIBULK));
        assert_eq!(d(b"*1\r\n$536870912\r\n"), Parse::Incomplete); // waits
        assert_eq!(d(b"*1\r\n$536870913\r\n"), error(INVALID_BULK)); // closed
        assert_eq!(d(&[b'a'; 65536]), Parse::Incomplete); // waits
        assert_eq!(d(&[b'a'; 65537]), error(TOO_BIG_INLINE)); // closed
        let mut line = vec![b'a'; 65536];
        line.extend_from_slice(b"\r\n"); // unknown command 'aaa…'
        assert_eq!(d(&line), Parse::Command { len: 65538 });
        // "*" and 65535 digits: waits; one more digit: closed.
        let mut count = vec![b'1'; 65536];
        count[0] = b'*';
        assert_eq!(d(&count), Parse::Incomplete);
        count.push(b'1');
        assert_eq!(d(&count), error(TOO_BIG_MBULK_COUNT));
        // "*1\r\n$" and 65535 digits: waits; one more digit: closed.
        let mut len = b"*1\r\n".to_vec();
        len.resize(4 + 65536, b'1');
        len[4] = b'$';
        assert_eq!(d(&len), Parse::Incomplete);
        len.push(b'1');
        assert_eq!(d(&len), error(TOO_BIG_BULK_COUNT));
    }

    #[test]
    fn lengths_parse_like_string2ll() {
        assert_eq!(parse_len(b"0"), Some(0));
        assert_eq!(parse_len(b"-1"), Some(-1));
        assert_eq!(parse_len(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_len(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_len(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn encoders_are_byte_exact() {
        let mut out = Vec::new();
        push_simple(&mut out, b"OK");
        push_error(&mut out, b"ERR unknown command 'a\r\nb'");
        push_int(&mut out, 0);
        push_int(&mut out, -42);
        push_int(&mut out, i64::MIN);
        push_bulk(&mut out, b"a\r\nb");
        push_bulk(&mut out, b"");
        push_null_bulk(&mut out);
        push_array_header(&mut out, 2);
        push_array_header(&mut out, 0);
        push_null_array(&mut out);
        push_bulk_header(&mut out, 100);
        push_protocol_error(&mut out, INVALID_BULK);
        push_expected_dollar(&mut out, b'x');
        push_expected_dollar(&mut out, b'\r');
        assert_eq!(
            String::from_utf8_lossy(&out),
            "+OK\r\n-ERR unknown command 'a  b'\r\n:0\r\n:-42\r\n:-9223372036854775808\r\n\
             $4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*2\r\n*0\r\n*-1\r\n$100\r\n\
             -ERR Protocol error: invalid bulk length\r\n\
             -ERR Protocol error: expected '$', got 'x'\r\n\
             -ERR Protocol error: expected '$', got ' '\r\n"
        );
    }

    #[test]
    fn command_names_ignore_case() {
        assert!(command_is(b"GET", b"get"));
        assert!(command_is(b"gEt", b"GET"));
        assert!(!command_is(b"GETS", b"GET"));
        assert!(!command_is(b"GE", b"GET"));
        assert!(!command_is(b"G\xc5T", b"GET"));
    }

    /// Checks what must hold for any input: lengths inside the input, args
    /// inside the consumed bytes, and a prefix either incomplete or parsed
    /// the same as the whole (so read boundaries never matter).
    fn check_invariants(input: &[u8], limits: &Limits, cut: usize) {
        let mut args = Vec::new();
        let whole = parse_command(input, &mut args, limits);
        let base = input.as_ptr() as usize;
        match whole {
            Parse::Command { len } => {
                assert!(0 < len && len <= input.len());
                assert!(!args.is_empty());
                for a in &args {
                    let start = a.as_ptr() as usize;
                    assert!(start >= base && start + a.len() <= base + len);
                }
            }
            Parse::Empty { len } => assert!(0 < len && len <= input.len() && args.is_empty()),
            Parse::Quoted { len } => {
                assert!(0 < len && len <= input.len() && args.is_empty());
                let mut owned = Vec::new();
                assert_eq!(split_quoted(&input[..len], &mut owned), Ok(()));
                assert!(!owned.is_empty());
            }
            _ => assert!(args.is_empty()),
        }
        let whole_args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        let prefix = &input[..cut.min(input.len())];
        let (part, part_args) = parse_with(prefix, limits);
        if part != Parse::Incomplete {
            assert_eq!((part, part_args), (whole, whole_args));
        }
    }

    fn proptest_config() -> ProptestConfig {
        ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(512),
            // No regression files next to the sources; failures print their input.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// A byte drawn mostly from the protocol's own.
    fn protocol_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            prop::sample::select(&b"*$\r\n0123456789- \"'\\x\0"[..]),
        ]
    }

    proptest! {
        #![proptest_config(proptest_config())]

        #[test]
        fn random_bytes_never_break_it(
            input in proptest::collection::vec(protocol_byte(), 0..300),
            cut in any::<usize>(),
            small in any::<bool>(),
        ) {
            let limits = if small { SMALL } else { Limits::default() };
            check_invariants(&input, &limits, cut);
        }

        #[test]
        fn mutated_commands_never_break_it(
            args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..5),
            inline in any::<bool>(),
            muts in proptest::collection::vec((any::<usize>(), protocol_byte(), 0u8..3), 0..4),
            cut in any::<usize>(),
            small in any::<bool>(),
        ) {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            if !inline {
                let whole = multibulk_of(&args);
                let want: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
                prop_assert_eq!(parse(&whole), (Parse::Command { len: whole.len() }, want));
            }
            let mut input = if inline {
                let mut line = args.join(&b' ');
                line.extend_from_slice(b"\r\n");
                line
            } else {
                multibulk_of(&args)
            };
            input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            for (at, byte, kind) in muts {
                let at = at % (input.len() + 1);
                match kind {
                    0 if at < input.len() => input[at] = byte,
                    1 => input.insert(at, byte),
                    _ if at < input.len() => { input.remove(at); }
                    _ => {}
                }
            }
            let limits = if small { SMALL } else { Limits::default() };
            check_invariants(&input, &limits, cut);
        }
    }
}
