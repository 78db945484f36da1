//! Protocol framing: bytes from a connection in, reply bytes out. Pure
//! functions over byte slices; no sockets here, so every parser is testable
//! on its own. The server calls [`process`] whenever new bytes arrive.
//!
//! Framing is line-based like memcached's ASCII protocol: each request starts
//! with a line ended by "\r\n" or a bare "\n"; a handler (text or meta) gets
//! the line and the bytes after it, and says how many of those it consumed
//! (its data block) through a [`Step`].
//!
//! Large values need not pass through the byte buffers: replies go to an
//! [`Out`], which can hand a value to the server's socket writer while the
//! item is locked, and a large data block can be read by the server
//! straight into its item ([`nread`]). Neither lets this module see a socket.

pub mod binary;
pub mod lookahead;
pub mod meta;
pub mod nread;
pub mod number;
pub mod out;
pub mod resp;
pub mod scan;
pub mod text;

use crate::command::Ctx;
pub use out::{DirectWrite, Out};

/// memcached closes a connection whose buffered line reaches this many bytes
/// without a newline, unless the line is a `get`/`gets` (multi-gets are unbounded).
pub const MAX_LINE: usize = 2048;

/// Our bound on a `get`/`gets` line still waiting for its newline (memcached
/// has none); beyond it the connection is closed so memory stays bounded.
pub const MAX_MULTIGET_LINE: usize = 8 << 20;

/// Per-connection protocol state.
#[derive(Default, Debug)]
pub struct Session {
    /// Bytes of a rejected data block still to discard as they arrive.
    pub swallow: usize,
    /// `-R`: handle at most this many requests per `process` call (0 = no
    /// limit), so one pipelining client cannot starve the others on its
    /// worker. The server sets it; `Processed::yielded` says when it bit.
    pub max_requests: usize,
    /// A request line was read and its data block is still arriving
    /// (memcached's `conn_nread`, shown by `stats conns`).
    pub in_data_block: bool,
    /// A multi-get (or `lru_crawler metadump`) at the head of the input was
    /// cut short by `out_limit`: where its reply resumes, the offset in its
    /// key list (or the dump's cursor); 0 = none. Its line stays unconsumed
    /// until the last key and `END` are written, so a connection holds at
    /// most about `out_limit` plus one item of output however many large
    /// values one `get` line asks for, or however many items a dump lists.
    pub resume: usize,
    /// The server can read a large data block straight into its item
    /// (a stream socket); see [`nread`].
    pub nread_ok: bool,
    /// A large data block being read into its item.
    pub nread: Option<Box<nread::Nread>>,
}

/// Outcome of handling one request, given its line and the input after it.
/// Byte counts are of that rest only (the line itself is always consumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The request (e.g. its data block) is not complete yet; nothing consumed.
    NeedMore,
    /// Request handled; this many bytes after the line consumed (its data block).
    Done(usize),
    /// Consumed this many bytes after the line, and the next `swallow` bytes
    /// of input must be discarded (a rejected data block not fully received yet).
    Swallow { consumed: usize, swallow: usize },
    /// Reply written; close the connection after flushing it.
    Close(usize),
    /// Part of the reply written (a multi-get reached the output limit);
    /// nothing consumed: the same line is handled again, and continues,
    /// on the next call.
    Partial,
}

/// What `process` did with the input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// Bytes of input fully handled; the server drops them from its buffer.
    pub consumed: usize,
    /// Close the connection once `out` has been written (`quit`, fatal errors).
    pub close: bool,
    /// Stopped early (request budget or `out_limit`) with input left that may
    /// hold complete requests: call again after other connections had a turn
    /// (memcached counts these as `conn_yields`), or once the output drains.
    /// A multi-get stopped mid-line yields having written output but possibly
    /// consumed nothing: progress is `consumed > 0` or output appended.
    pub yielded: bool,
}

/// Handles every complete request in `input`, appending replies to `out`.
/// Stops early once this call has appended more than `out_limit` bytes so a
/// client that does not read cannot grow server memory without bound (the
/// server calls again once its pending output drains). `out` may start with
/// bytes the server has already written; they do not count. Multi-gets stop
/// between keys (see [`Session::resume`]). Every call handles at least
/// one request or one key of a multi-get, so the connection always makes
/// progress.
pub fn process(
    session: &mut Session,
    input: &[u8],
    out: &mut Vec<u8>,
    ctx: &Ctx,
    out_limit: usize,
) -> Processed {
    process_out(session, input, &mut Out::buffered(out), ctx, out_limit)
}

/// [`process`] with an [`Out`] that may write large values straight to the
/// socket: value bytes the socket took never enter the buffer, so they do
/// not count towards `out_limit` and a multi-get of large values keeps
/// streaming while the client reads.
pub fn process_out(
    session: &mut Session,
    input: &[u8],
    out: &mut Out,
    ctx: &Ctx,
    out_limit: usize,
) -> Processed {
    let out_start = out.len();
    let mut pos = 0;
    let mut close = false;
    let mut yielded = false;
    let mut handled = 0;
    let mut ahead = lookahead::Lookahead::new(pos);
    session.in_data_block = false;
    while pos < input.len() {
        if let Some(nr) = session.nread.as_mut() {
            pos += nr.feed(&input[pos..]);
            if !nr.complete() {
                break;
            }
            if let Some(nr) = session.nread.take() {
                finish_nread(*nr, out, ctx);
            }
            handled += 1;
            continue;
        }
        if session.swallow > 0 {
            let n = session.swallow.min(input.len() - pos);
            session.swallow -= n;
            pos += n;
            continue;
        }
        if out.len() - out_start > out_limit
            || (session.max_requests > 0 && handled >= session.max_requests)
        {
            yielded = true;
            break;
        }
        ahead.advance(input, pos, &ctx.shared.store);
        let buf = &input[pos..];
        let Some(nl) = scan::find_byte(buf, b'\n') else {
            close = line_too_long(buf);
            break;
        };
        let line = if nl > 0 && buf[nl - 1] == b'\r' {
            &buf[..nl - 1]
        } else {
            &buf[..nl]
        };
        // memcached reads the line as a C string: a NUL ends the command.
        let line = match scan::find_byte(line, 0) {
            Some(z) => &line[..z],
            None => line,
        };
        let rest = &buf[nl + 1..];
        out.more_input = !rest.is_empty();
        let slot = session.nread_ok.then_some(&mut session.nread);
        let step = if is_meta(line) {
            meta::handle(line, rest, out, ctx, slot)
        } else {
            let stop_at = out_start.saturating_add(out_limit);
            text::handle(line, rest, out, ctx, &mut session.resume, stop_at, slot)
        };
        handled += 1;
        match step {
            Step::NeedMore => {
                session.in_data_block = true;
                break;
            }
            Step::Done(n) => pos += nl + 1 + n,
            Step::Swallow { consumed, swallow } => {
                pos += nl + 1 + consumed;
                session.swallow = swallow;
            }
            Step::Close(n) => {
                pos += nl + 1 + n;
                close = true;
                break;
            }
            Step::Partial => {
                yielded = true;
                break;
            }
        }
    }
    session.in_data_block |= session.nread.is_some();
    Processed {
        consumed: pos,
        close,
        yielded,
    }
}

/// A data block read into its item is complete: handle its request line
/// again with the item (the line passed every check when it arrived).
fn finish_nread(nr: nread::Nread, out: &mut Out, ctx: &Ctx) {
    let tail_ok = nr.tail == *b"\r\n";
    if is_meta(&nr.line) {
        meta::finish_set(&nr.line, nr.item, tail_ok, out, ctx);
    } else {
        text::finish_update(&nr.line, nr.item, tail_ok, out, ctx);
    }
}

/// Meta commands are the two-letter commands starting with 'm' (memcached
/// dispatches on exactly that shape; other two-letter `m?` answer ERROR).
fn is_meta(line: &[u8]) -> bool {
    let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
    let cmd = &line[start..];
    cmd.len() >= 2
        && matches!(&cmd[..2], b"mg" | b"ms" | b"md" | b"ma" | b"mn" | b"me")
        && (cmd.len() == 2 || cmd[2] == b' ')
}

/// A partial line with no newline yet: should the connection be closed?
/// memcached waits while the line is short, and keeps reading a long one
/// only when it is a multi-get (after at most 100 leading spaces).
fn line_too_long(buf: &[u8]) -> bool {
    if buf.len() <= MAX_LINE {
        return false;
    }
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let cmd = &buf[spaces..];
    let multiget = spaces <= 100 && (cmd.starts_with(b"get ") || cmd.starts_with(b"gets "));
    !multiget || buf.len() > MAX_MULTIGET_LINE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Shared;
    use crate::config::Config;
    use crate::stats::WorkerStats;

    struct Conn {
        shared: Shared,
        stats: WorkerStats,
        session: Session,
        pending: Vec<u8>,
    }

    impl Conn {
        fn new() -> Conn {
            let config = Config {
                item_size_max: 1024,
                ..Config::default()
            };
            Conn {
                shared: Shared::new(config),
                stats: WorkerStats::default(),
                session: Session::default(),
                pending: Vec::new(),
            }
        }

        /// Feeds bytes like a socket read would; returns (replies, close).
        fn feed(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
            self.pending.extend_from_slice(bytes);
            let ctx = Ctx {
                shared: &self.shared,
                stats: &self.stats,
            };
            let mut out = Vec::new();
            let p = process(&mut self.session, &self.pending, &mut out, &ctx, 1 << 20);
            self.pending.drain(..p.consumed);
            (out, p.close)
        }

        fn reply(&mut self, bytes: &[u8]) -> String {
            String::from_utf8_lossy(&self.feed(bytes).0).into_owned()
        }
    }

    #[test]
    fn pipelined_requests_in_one_buffer() {
        let mut c = Conn::new();
        let mut req = Vec::new();
        for i in 0..100 {
            req.extend_from_slice(format!("set k{i} 0 0 2\r\nv{}\r\n", i % 10).as_bytes());
        }
        req.extend_from_slice(b"get k1 k99\r\n");
        let r = c.reply(&req);
        assert_eq!(r.matches("STORED\r\n").count(), 100);
        assert!(r.ends_with("VALUE k1 0 2\r\nv1\r\nVALUE k99 0 2\r\nv9\r\nEND\r\n"));
    }

    #[test]
    fn byte_at_a_time() {
        let mut c = Conn::new();
        let mut all = String::new();
        for b in b"set a 5 0 3\r\nabc\r\nget a\nversion\r\n" {
            all += &c.reply(&[*b]);
        }
        assert_eq!(
            all,
            format!(
                "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nVERSION {}\r\n",
                crate::VERSION
            )
        );
    }

    #[test]
    fn too_large_value_is_swallowed_across_reads() {
        let mut c = Conn::new();
        assert_eq!(c.reply(b"set a 0 0 1\r\nx\r\n"), "STORED\r\n");
        assert_eq!(
            c.reply(b"set a 0 0 5000\r\n"),
            "SERVER_ERROR object too large for cache\r\n"
        );
        // The old value of a failed set is gone, like memcached.
        assert_eq!(c.reply(&[b'z'; 3000]), "");
        let mut tail = vec![b'z'; 2000];
        tail.extend_from_slice(b"\r\nget a\r\n");
        assert_eq!(c.reply(&tail), "END\r\n");
    }

    #[test]
    fn long_lines_without_newline() {
        let mut c = Conn::new();
        assert_eq!(c.feed(&[b'a'; 2000]), (vec![], false));
        assert!(c.feed(&[b'a'; 100]).1, "non-get line over 2048 closes");

        let mut c = Conn::new();
        let mut get = b"get".to_vec();
        for i in 0..1000 {
            get.extend_from_slice(format!(" key{i}").as_bytes());
        }
        assert_eq!(c.feed(&get), (vec![], false), "multi-get keeps reading");
        assert_eq!(c.reply(b"\r\n"), "END\r\n");

        let mut c = Conn::new();
        assert_eq!(c.reply(&[b'a'; 3000]).len(), 0);
        let mut c = Conn::new();
        let mut line = vec![b'a'; 3000];
        line.extend_from_slice(b"\r\nversion\r\n");
        assert!(c.reply(&line).starts_with("ERROR\r\nVERSION "));
    }

    #[test]
    fn request_budget_yields() {
        let mut c = Conn::new();
        c.session.max_requests = 2;
        let ctx = Ctx {
            shared: &c.shared,
            stats: &c.stats,
        };
        let input = b"version\r\nversion\r\nversion\r\n";
        let mut out = Vec::new();
        let p = process(&mut c.session, input, &mut out, &ctx, 1 << 20);
        assert_eq!((p.consumed, p.yielded), (18, true));
        let p = process(&mut c.session, &input[18..], &mut out, &ctx, 1 << 20);
        assert_eq!((p.consumed, p.yielded), (9, false));
        assert_eq!(out.len(), 3 * (10 + crate::VERSION.len()));
    }

    #[test]
    fn quit_and_http_close() {
        let mut c = Conn::new();
        assert_eq!(c.feed(b"quit\r\nversion\r\n"), (vec![], true));
        let mut c = Conn::new();
        assert_eq!(c.feed(b"GET / HTTP/1.1\r\n"), (vec![], true));
    }

    #[test]
    fn stops_at_out_limit() {
        let mut c = Conn::new();
        c.reply(b"set a 0 0 100\r\n");
        let mut value = vec![b'x'; 100];
        value.extend_from_slice(b"\r\n");
        let (r, _) = c.feed(&value);
        assert_eq!(r, b"STORED\r\n");
        let ctx = Ctx {
            shared: &c.shared,
            stats: &c.stats,
        };
        let input = b"get a\r\n".repeat(50);
        let mut out = Vec::new();
        let p = process(&mut c.session, &input, &mut out, &ctx, 1000);
        assert!(p.consumed < input.len() && p.consumed.is_multiple_of(7));
        assert!(out.len() > 1000 && out.len() < 1200);
    }

    /// Runs `input` through `process` with `out_limit` the way the server
    /// does (again while it yields); returns the replies and the calls made.
    fn drain(c: &mut Conn, input: &[u8], out_limit: usize) -> (Vec<u8>, usize) {
        let ctx = Ctx {
            shared: &c.shared,
            stats: &c.stats,
        };
        let mut input = input.to_vec();
        let mut out = Vec::new();
        let mut calls = 0;
        loop {
            calls += 1;
            let before = out.len();
            let p = process(&mut c.session, &input, &mut out, &ctx, out_limit);
            assert!(p.consumed > 0 || out.len() > before, "no progress");
            input.drain(..p.consumed);
            if !p.yielded {
                assert!(input.is_empty());
                return (out, calls);
            }
        }
    }

    #[test]
    fn multiget_streams_between_keys() {
        let mut c = Conn::new();
        for k in ["a", "b", "c"] {
            let v = k.repeat(100);
            c.reply(format!("set {k} 0 0 100\r\n{v}\r\n").as_bytes());
        }
        let input = b"get a b nope c a\r\ngats 0 c a\r\nversion\r\n";
        let (whole, calls) = drain(&mut c, input, 1 << 20);
        assert_eq!(calls, 1);
        let mut c = Conn::new();
        for k in ["a", "b", "c"] {
            let v = k.repeat(100);
            c.reply(format!("set {k} 0 0 100\r\n{v}\r\n").as_bytes());
        }
        let ctx = Ctx {
            shared: &c.shared,
            stats: &c.stats,
        };
        // The first call stops after one value, consuming nothing.
        let mut out = Vec::new();
        let p = process(&mut c.session, input, &mut out, &ctx, 50);
        assert_eq!((p.consumed, p.yielded), (0, true));
        assert!(out.starts_with(b"VALUE a 0 100\r\naaa") && out.len() == 117);
        assert!(c.session.resume > 0);
        c.session = Session::default();
        let (streamed, calls) = drain(&mut c, input, 50);
        // CAS uniques may differ between the two stores; the rest may not.
        let strip = |v: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(v)
                .split("\r\n")
                .map(|l| match l.strip_prefix("VALUE ") {
                    Some(h) => h.split(' ').take(3).collect::<Vec<_>>().join(" "),
                    None => l.to_string(),
                })
                .collect()
        };
        assert_eq!(strip(&streamed), strip(&whole));
        assert!(calls >= 6, "{calls} calls");
        assert_eq!(c.session.resume, 0);
        let s = &c.stats;
        // The lone call above looked up `a` once more: 5 + 1 gets.
        assert_eq!(
            (s.cmd_get.get(), s.get_hits.get(), s.get_misses.get()),
            (6, 5, 1)
        );
        assert_eq!((s.cmd_touch.get(), s.touch_hits.get()), (2, 2));
    }

    #[test]
    fn long_key_after_a_stop_is_one_error() {
        let mut c = Conn::new();
        c.reply(format!("set a 0 0 100\r\n{}\r\n", "a".repeat(100)).as_bytes());
        let input = format!("get a a b a {} a\r\nversion\r\n", "k".repeat(251));
        let (out, _) = drain(&mut c, input.as_bytes(), 50);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!(
                "CLIENT_ERROR bad command line format\r\nVERSION {}\r\n",
                crate::VERSION
            )
        );
        let s = &c.stats;
        assert_eq!((s.cmd_get.get(), s.get_hits.get()), (4, 3));
    }

    #[test]
    fn counts_like_memcached() {
        let mut c = Conn::new();
        c.reply(
            b"set a 0 0 1\r\n1\r\nget a b\r\ngat 0 a b\r\ntouch a 0\r\nincr a 1\r\ndecr b 1\r\n",
        );
        let s = &c.stats;
        assert_eq!(s.cmd_set.get(), 1);
        assert_eq!(
            (s.cmd_get.get(), s.get_hits.get(), s.get_misses.get()),
            (2, 1, 1)
        );
        assert_eq!(
            (s.cmd_touch.get(), s.touch_hits.get(), s.touch_misses.get()),
            (3, 2, 1)
        );
        assert_eq!((s.incr_hits.get(), s.decr_misses.get()), (1, 1));
    }

    #[test]
    fn stats_detail_counts_prefixes() {
        let mut c = Conn::new();
        assert_eq!(
            c.reply(b"stats detail\r\n"),
            "CLIENT_ERROR usage: stats detail on|off|dump\r\n"
        );
        c.reply(b"set foo:0 0 0 1\r\nx\r\n"); // before `on`: not counted
        let r = c.reply(
            b"stats detail on\r\nset foo:1 0 0 1\r\nx\r\nget foo:1 foo:2 bar\r\n\
              delete foo:3\r\nset a:b:c 0 0 1\r\nx\r\ngat 0 a:b\r\nstats detail dump\r\n",
        );
        assert!(r.ends_with(
            "PREFIX foo get 2 hit 1 set 1 del 1\r\nPREFIX a get 1 hit 0 set 1 del 0\r\nEND\r\n"
        ));
        assert_eq!(
            c.reply(b"stats detail off\r\nget foo:1\r\nstats reset\r\nstats detail dump\r\n"),
            "OK\r\nVALUE foo:1 0 1\r\nx\r\nEND\r\nRESET\r\nEND\r\n"
        );
    }

    /// Random request streams: no panic, and the replies do not depend on
    /// how the bytes are split into reads.
    #[test]
    fn replies_independent_of_read_boundaries() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let words: &[&[u8]] = &[
            b"get",
            b"gets",
            b"gat",
            b"set",
            b"add",
            b"cas",
            b"append",
            b"incr",
            b"decr",
            b"delete",
            b"touch",
            b"flush_all",
            b"version",
            b"verbosity",
            b"stats",
            b"k1",
            b"k2",
            b"0",
            b"1",
            b"5",
            b"-1",
            b"noreply",
            b"99999999999",
            b"abc",
            b"\r\n",
            b"\n",
            b"hello",
            b"  ",
            b"\x00",
            b"4294967296",
            b"1500",
        ];
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..rnd(40) {
                input.extend_from_slice(words[rnd(words.len() as u64) as usize]);
                input.push(if rnd(4) == 0 { b'\n' } else { b' ' });
            }
            // Fresh servers: the replies must not depend on earlier cases.
            let mut whole = Conn::new();
            let (a, close_a) = whole.feed(&input);
            let mut split = Conn::new();
            let mut b = Vec::new();
            let mut close_b = false;
            let mut i = 0;
            while i < input.len() && !close_b {
                let n = (1 + rnd(7) as usize).min(input.len() - i);
                let (r, c) = split.feed(&input[i..i + n]);
                b.extend_from_slice(&r);
                close_b = c;
                i += n;
            }
            // Drop CAS uniques and stats (they differ between the servers).
            let norm = |v: &[u8]| -> String {
                String::from_utf8_lossy(v)
                    .lines()
                    .filter(|l| !l.starts_with("STAT "))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(
                norm(&a),
                norm(&b),
                "input {:?}",
                String::from_utf8_lossy(&input)
            );
            assert_eq!(close_a, close_b);
        }
    }
}
