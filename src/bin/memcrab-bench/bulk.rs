//! Bulk mode: the cheapest load this generator can offer per request, so that
//! on a machine it shares with the server the server is what gets measured.
//!
//! Batches of requests are rendered once at start-up — every key of the key
//! space, in a shuffled order, so all hash buckets and lock stripes are hit —
//! together with the exact bytes each batch must be answered with. During the
//! run a connection writes batches straight from those buffers and compares
//! every reply byte with the expected bytes: no per-request formatting,
//! parsing or allocation, and still nothing unchecked (a miss, an error line
//! or a wrong value byte is a mismatch, which is counted and ends the
//! connection).
//!
//! Batches (`ms` = meta, `set` = text):
//! - set: `ms <key> <len> q\r\n<data>\r\n` × N then `mn\r\n`; quiet sets only
//!   answer on failure, so the whole reply is `MN\r\n`. Text: `set <key> 0 0
//!   <len> noreply` lines, also closed by `mn`.
//! - get: `mg <key> v\r\n` × N, each answered `VA <len>\r\n<data>\r\n`. Text:
//!   one `get k1 … kN\r\n`, answered with N `VALUE` blocks and `END`. Every
//!   key must be present (preload), or the reply differs.

use crate::args::{BulkOp, Protocol};
use crate::conn::Window;
use crate::runner::Shared;
use crate::stats::ThreadStats;
use crate::workload::{Rng, Spec};
use mio::net::TcpStream;
use mio::{Events, Poll};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::ops::Range;
use std::time::Instant;

struct Batch {
    req: Range<usize>,
    reply: Range<usize>,
    ops: u32,
}

/// All batches: requests and expected replies, each in one contiguous buffer.
pub struct Pool {
    pub op: BulkOp,
    req: Vec<u8>,
    reply: Vec<u8>,
    batches: Vec<Batch>,
}

impl Pool {
    /// Renders every key once, shuffled by `seed`, in batches of `batch`.
    pub fn new(spec: &Spec, op: BulkOp, batch: usize, seed: u64) -> Pool {
        let mut order: Vec<u32> = (0..spec.keys as u32).collect();
        let mut rng = Rng::new(seed);
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let mut p = Pool {
            op,
            req: Vec::new(),
            reply: Vec::new(),
            batches: Vec::with_capacity(order.len().div_ceil(batch)),
        };
        for keys in order.chunks(batch) {
            let (r0, a0) = (p.req.len(), p.reply.len());
            match op {
                BulkOp::Set => render_set(spec, keys, &mut p.req, &mut p.reply),
                BulkOp::Get => render_get(spec, keys, &mut p.req, &mut p.reply),
                BulkOp::Incr => render_incr(spec, keys, &mut p.req, &mut p.reply),
            }
            p.batches.push(Batch {
                req: r0..p.req.len(),
                reply: a0..p.reply.len(),
                ops: keys.len() as u32,
            });
        }
        p
    }

    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// The shortest expected reply of any batch.
    fn min_reply(&self) -> usize {
        self.batches
            .iter()
            .map(|b| b.reply.len())
            .min()
            .unwrap_or(1)
    }

    fn req(&self, b: usize) -> &[u8] {
        &self.req[self.batches[b].req.clone()]
    }

    fn reply(&self, b: usize) -> &[u8] {
        &self.reply[self.batches[b].reply.clone()]
    }
}

/// Appends one set batch of `keys` and its expected reply.
pub fn render_set(spec: &Spec, keys: &[u32], req: &mut Vec<u8>, reply: &mut Vec<u8>) {
    let len = spec.value.len().to_string();
    for &k in keys {
        match spec.protocol {
            Protocol::Meta => {
                req.extend_from_slice(b"ms ");
                spec.push_key(req, k);
                req.push(b' ');
                req.extend_from_slice(len.as_bytes());
                req.extend_from_slice(b" q\r\n");
            }
            Protocol::Text => {
                req.extend_from_slice(b"set ");
                spec.push_key(req, k);
                req.extend_from_slice(b" 0 0 ");
                req.extend_from_slice(len.as_bytes());
                req.extend_from_slice(b" noreply\r\n");
            }
        }
        req.extend_from_slice(&spec.value);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"mn\r\n");
    reply.extend_from_slice(b"MN\r\n");
}

/// Appends one increment batch of `keys` and its expected reply: quiet
/// increments only answer on failure (a miss, a non-numeric value), so the
/// whole reply is `MN\r\n`.
pub fn render_incr(spec: &Spec, keys: &[u32], req: &mut Vec<u8>, reply: &mut Vec<u8>) {
    for &k in keys {
        match spec.protocol {
            Protocol::Meta => {
                req.extend_from_slice(b"ma ");
                spec.push_key(req, k);
                req.extend_from_slice(b" q\r\n");
            }
            Protocol::Text => {
                req.extend_from_slice(b"incr ");
                spec.push_key(req, k);
                req.extend_from_slice(b" 1 noreply\r\n");
            }
        }
    }
    req.extend_from_slice(b"mn\r\n");
    reply.extend_from_slice(b"MN\r\n");
}

/// Appends one get batch of `keys` and its expected reply (all hits).
pub fn render_get(spec: &Spec, keys: &[u32], req: &mut Vec<u8>, reply: &mut Vec<u8>) {
    let len = spec.value.len().to_string();
    match spec.protocol {
        Protocol::Meta => {
            for &k in keys {
                req.extend_from_slice(b"mg ");
                spec.push_key(req, k);
                req.extend_from_slice(b" v\r\n");
                reply.extend_from_slice(b"VA ");
                reply.extend_from_slice(len.as_bytes());
                reply.extend_from_slice(b"\r\n");
                reply.extend_from_slice(&spec.value);
                reply.extend_from_slice(b"\r\n");
            }
        }
        Protocol::Text => {
            req.extend_from_slice(b"get");
            for &k in keys {
                req.push(b' ');
                spec.push_key(req, k);
                reply.extend_from_slice(b"VALUE ");
                spec.push_key(reply, k);
                reply.extend_from_slice(b" 0 ");
                reply.extend_from_slice(len.as_bytes());
                reply.extend_from_slice(b"\r\n");
                reply.extend_from_slice(&spec.value);
                reply.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"\r\n");
            reply.extend_from_slice(b"END\r\n");
        }
    }
}

/// Compares received bytes `got` with `expected[matched..]`. Returns how many
/// bytes of `got` belong to this reply (at most what is left of it), or the
/// offset in `got` of the first byte that differs.
pub fn match_reply(expected: &[u8], matched: usize, got: &[u8]) -> Result<usize, usize> {
    let want = &expected[matched..];
    let m = want.len().min(got.len());
    if got[..m] == want[..m] {
        return Ok(m);
    }
    Err(got[..m]
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(0))
}

/// Printable excerpt of bytes for error messages.
fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(60)])
        .escape_debug()
        .to_string()
}

struct BulkConn {
    sock: TcpStream,
    /// Batches sent or being sent, oldest first, with their send times.
    inflight: VecDeque<(usize, Instant)>,
    /// `inflight[wnext]` is the first batch not completely written; `woff`
    /// bytes of it are.
    wnext: usize,
    woff: usize,
    /// Bytes of the oldest batch's reply already received and matched.
    roff: usize,
    /// Next batch of the pool this connection sends (it walks the whole pool).
    next: usize,
    dead: bool,
}

const READ_CHUNK: usize = 512 * 1024;

impl BulkConn {
    fn fill(&mut self, pool: &Pool, depth: usize, now: Instant) {
        while self.inflight.len() < depth {
            self.inflight.push_back((self.next, now));
            self.next += 1;
            if self.next == pool.len() {
                self.next = 0;
            }
        }
    }

    fn fail(&mut self, st: &mut ThreadStats, why: String) {
        if !self.dead {
            self.dead = true;
            st.conn_errors += 1;
            st.first_error.get_or_insert(why);
        }
    }

    fn flush(&mut self, pool: &Pool, st: &mut ThreadStats) {
        while let Some(&(b, _)) = self.inflight.get(self.wnext) {
            let req = pool.req(b);
            match self.sock.write(&req[self.woff..]) {
                Ok(0) => return self.fail(st, "write returned 0".into()),
                Ok(n) => {
                    self.woff += n;
                    if self.woff == req.len() {
                        self.wnext += 1;
                        self.woff = 0;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(st, format!("write: {e}")),
            }
        }
    }

    /// Reads what is available and matches it against the expected replies.
    /// Returns the number of batches completed.
    fn on_readable(
        &mut self,
        pool: &Pool,
        rbuf: &mut [u8],
        st: &mut ThreadStats,
        window: Window,
    ) -> usize {
        let mut completed = 0;
        loop {
            let n = match self.sock.read(rbuf) {
                Ok(0) => {
                    self.fail(st, "server closed the connection".into());
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail(st, format!("read: {e}"));
                    break;
                }
            };
            let now = Instant::now();
            let record = now >= window.start && now < window.end;
            let mut got = &rbuf[..n];
            while !got.is_empty() {
                let Some(&(b, sent)) = self.inflight.front() else {
                    st.proto_errors += 1;
                    self.fail(
                        st,
                        format!("reply with nothing in flight: \"{}\"", show(got)),
                    );
                    return completed;
                };
                let want = pool.reply(b);
                match match_reply(want, self.roff, got) {
                    Ok(m) => {
                        got = &got[m..];
                        self.roff += m;
                    }
                    Err(at) => {
                        st.proto_errors += 1;
                        let from = self.roff + at;
                        self.fail(
                            st,
                            format!(
                                "bulk reply differs at byte {from}: got \"{}\", expected \"{}\"",
                                show(&got[at..]),
                                show(&want[from..])
                            ),
                        );
                        return completed;
                    }
                }
                if self.roff == want.len() {
                    if self.wnext == 0 {
                        st.proto_errors += 1;
                        self.fail(st, "reply complete before its request was sent".into());
                        return completed;
                    }
                    self.roff = 0;
                    self.wnext -= 1;
                    self.inflight.pop_front();
                    completed += 1;
                    if record {
                        st.record_batch(pool.op, pool.batches[b].ops, now.duration_since(sent));
                    }
                }
            }
        }
        completed
    }
}

/// The measured phase in bulk mode: drives `socks` (already connected,
/// registered with `poll` under their index, and flagged usable or not) until
/// the window closes or the op cap stops the run.
pub fn drive(
    poll: &mut Poll,
    socks: Vec<(TcpStream, bool)>,
    sh: &Shared,
    pool: &Pool,
    seed: u64,
    st: &mut ThreadStats,
    window: Window,
) {
    let mut rng = Rng::new(seed);
    let now = Instant::now();
    let mut conns: Vec<BulkConn> = socks
        .into_iter()
        .map(|(sock, usable)| BulkConn {
            sock,
            inflight: VecDeque::with_capacity(sh.depth),
            wnext: 0,
            woff: 0,
            roff: 0,
            // Spread the connections over the pool.
            next: rng.below(pool.len() as u64) as usize,
            dead: !usable,
        })
        .collect();
    // Wake-ups are most of the generator's cost, so with `depth` batches in
    // flight the socket polls readable only once `depth - 1` replies could be
    // there (SO_RCVLOWAT), while the server works on the last one. Safe: after
    // a read drains the socket, what is still owed (the rest of the oldest
    // reply plus `depth - 1` whole ones) is at least that much; the idle
    // sweep below (after `POLL_TIMEOUT` without events) covers anything else (e.g. a short error reply).
    let lowat = (pool.min_reply() * (sh.depth - 1)).clamp(1, READ_CHUNK / 2) as libc::c_int;
    for c in conns.iter().filter(|c| !c.dead) {
        set_rcvlowat(&c.sock, lowat);
    }
    let mut rbuf = vec![0u8; READ_CHUNK];
    let mut events = Events::with_capacity(1024);
    for c in conns.iter_mut().filter(|c| !c.dead) {
        c.fill(pool, sh.depth, now);
        c.flush(pool, st);
    }
    let mut since_publish = 0u64;
    loop {
        if !crate::runner::wait(poll, &mut events, st) {
            return;
        }
        if events.is_empty() {
            // Nothing woke us for a while: read what is there below the low-water mark.
            for c in conns.iter_mut().filter(|c| !c.dead) {
                if c.on_readable(pool, &mut rbuf, st, window) > 0 && !c.dead {
                    c.fill(pool, sh.depth, Instant::now());
                    c.flush(pool, st);
                }
            }
        }
        for ev in events.iter() {
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            if c.dead {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let done = c.on_readable(pool, &mut rbuf, st, window);
                if done > 0 && !c.dead {
                    c.fill(pool, sh.depth, Instant::now());
                }
            }
            if !c.dead {
                c.flush(pool, st);
            }
        }
        if sh.pass_done(st.ops, &mut since_publish, 10_000, window) {
            return;
        }
        if conns.iter().all(|c| c.dead) {
            return;
        }
    }
}

/// SO_RCVLOWAT: the socket polls readable only with at least `n` bytes
/// queued (reads still return whatever is there). Best effort.
fn set_rcvlowat(sock: &TcpStream, n: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket fd and a c_int option value of the stated size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&n as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;
    use clap::Parser;

    fn spec(extra: &[&str]) -> Spec {
        let mut v = vec!["memcrab-bench", "--value-size", "3"];
        v.extend_from_slice(extra);
        Spec::new(&Args::parse_from(v))
    }

    #[test]
    fn set_batches_are_quiet_and_closed_by_mn() {
        let s = spec(&["-P", "meta", "--keys", "10"]);
        let (mut req, mut reply) = (Vec::new(), Vec::new());
        render_set(&s, &[3, 7], &mut req, &mut reply);
        assert_eq!(req, b"ms mb:3 3 q\r\nabc\r\nms mb:7 3 q\r\nabc\r\nmn\r\n");
        assert_eq!(reply, b"MN\r\n");
        let s = spec(&["--keys", "10"]);
        let (mut req, mut reply) = (Vec::new(), Vec::new());
        render_set(&s, &[1], &mut req, &mut reply);
        assert_eq!(req, b"set mb:1 0 0 3 noreply\r\nabc\r\nmn\r\n");
        assert_eq!(reply, b"MN\r\n");
    }

    #[test]
    fn incr_batches_are_quiet_and_closed_by_mn() {
        let s = spec(&["-P", "meta", "--keys", "10"]);
        let (mut req, mut reply) = (Vec::new(), Vec::new());
        render_incr(&s, &[3, 7], &mut req, &mut reply);
        assert_eq!(req, b"ma mb:3 q\r\nma mb:7 q\r\nmn\r\n");
        assert_eq!(reply, b"MN\r\n");
        let s = spec(&["--keys", "10", "--bulk", "incr"]);
        assert_eq!(s.value, b"0");
        let (mut req, mut reply) = (Vec::new(), Vec::new());
        render_incr(&s, &[1], &mut req, &mut reply);
        assert_eq!(req, b"incr mb:1 1 noreply\r\nmn\r\n");
        assert_eq!(reply, b"MN\r\n");
    }

    #[test]
    fn get_batches_expect_every_value() {
        let s = spec(&["-P", "meta", "--keys", "10"]);
        let (mut req, mut reply) = (Vec::new(), Vec::new());
        render_get(&s, &[0, 9], &mut req, &mut reply);
        assert_eq!(req, b"mg mb:0 v\r\nmg mb:9 v\r\n");
        assert_eq!(reply, b"VA 3\r\nabc\r\nVA 3\r\nabc\r\n");
        let s = spec(&["--keys", "10"]);
        let (mut req, mut reply) = (Vec::new(), Vec::new());
        render_get(&s, &[0, 9], &mut req, &mut reply);
        assert_eq!(req, b"get mb:0 mb:9\r\n");
        assert_eq!(
            reply,
            b"VALUE mb:0 0 3\r\nabc\r\nVALUE mb:9 0 3\r\nabc\r\nEND\r\n"
        );
    }

    #[test]
    fn pool_covers_every_key_once() {
        let s = spec(&["-P", "meta", "--keys", "1000"]);
        let p = Pool::new(&s, BulkOp::Set, 64, 1);
        assert_eq!(p.len(), 16); // 15 full batches and one of 40
        let ops: u32 = p.batches.iter().map(|b| b.ops).sum();
        assert_eq!(ops, 1000);
        let mut seen = vec![false; 1000];
        for b in 0..p.len() {
            let req = p.req(b);
            assert!(req.ends_with(b"mn\r\n"));
            assert_eq!(p.reply(b), b"MN\r\n");
            for line in req.split(|&c| c == b'\n').filter(|l| l.starts_with(b"ms ")) {
                let key = line.split(|&c| c == b' ').nth(1).unwrap();
                let k = s.parse_key(key).unwrap() as usize;
                assert!(!seen[k], "key {k} twice");
                seen[k] = true;
            }
        }
        assert!(seen.iter().all(|&x| x));
        // Shuffled: the first batch is not simply keys 0..64.
        assert!(!p.req(0).starts_with(b"ms mb:000 "));
    }

    #[test]
    fn replies_match_across_reads_and_mismatches_are_located() {
        let want = b"VA 3\r\nabc\r\n";
        // Split anywhere: the pieces add up and report how much they consumed.
        for cut in 0..want.len() {
            assert_eq!(match_reply(want, 0, &want[..cut]), Ok(cut));
            assert_eq!(match_reply(want, cut, &want[cut..]), Ok(want.len() - cut));
        }
        // Bytes beyond this reply belong to the next one.
        assert_eq!(match_reply(b"MN\r\n", 0, b"MN\r\nMN\r\n"), Ok(4));
        // A quiet set that failed answers before MN.
        assert_eq!(match_reply(b"MN\r\n", 0, b"NS\r\nMN\r\n"), Err(0));
        assert_eq!(
            match_reply(b"MN\r\n", 0, b"SERVER_ERROR out of memory\r\n"),
            Err(0)
        );
        // A miss, and a wrong data byte.
        assert_eq!(match_reply(want, 0, b"EN\r\n"), Err(0));
        assert_eq!(match_reply(want, 4, b"\r\nabd\r\n"), Err(4));
    }
}
