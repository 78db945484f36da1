//! One client connection: its socket, a read buffer and an output buffer
//! (both reused across requests), and the loop that moves bytes between the
//! socket and `protocol::process`.
//!
//! Per wakeup: read what the socket has (one `read` per round; the worker
//! may have done the first one ahead, see `read_ahead`), hand every
//! unprocessed byte to the protocol, drop what it consumed, and leave the
//! replies for the worker's batched send (`Outcome::Flush`), or write them
//! with one `write` when batching is off. Memory is bounded: the read
//! buffer never grows past `rcap` (an item plus its command line), and once more than
//! `out_limit` bytes of replies wait for the client we stop reading until
//! they drain, so a client that pipelines without reading cannot grow us.
//! After `-R` requests in one turn the connection yields (`conn_yields`)
//! and the worker comes back to it after its other ready connections.
//!
//! Large values skip the buffers: the protocol may hand a value to the
//! socket while its item is locked (`protocol::Out`, one `writev` of the
//! unsent output plus the value; what the socket does not take is
//! buffered), and a large data block is read straight into its reserved
//! item (`protocol::nread`, one `readv` into the item and the read buffer).

use super::control::{ConnInfo, ConnState};
use crate::command::Ctx;
use crate::protocol::{self, DirectWrite, Out, Session};
use crate::stats::WorkerStats;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::sync::Arc;

/// Initial (and shrink-back) size of the read buffer.
const RBUF_INIT: usize = 16 * 1024;
/// After a large data block went straight into its item, the next reads
/// into an empty buffer take at most this much: the next request is likely
/// another large set, and whatever of its value this read takes is copied
/// from the buffer into the item, while the rest goes straight in. A get or
/// a set's command line fits easily.
const SMALL_READ: usize = 2048;
/// How many reads after such a block stop at `SMALL_READ`.
const SMALL_READS: u8 = 8;
/// Initial capacity of an output buffer.
const WBUF_INIT: usize = 16 * 1024;
/// Output capacity worth keeping in the pool; bigger buffers are freed.
const WBUF_KEEP: usize = 64 * 1024;
/// Standard-size buffers of each kind a worker keeps for reuse.
const POOL_KEEP: usize = 32;
/// Grown buffers up to this size are worth keeping (e.g. for 100 KB values).
const BIG_MAX: usize = 2 << 20;
/// Bytes of grown buffers of each kind a worker keeps.
const BIG_BUDGET: usize = 2 << 20;

/// A worker's spare buffers. A connection holds buffers only while it has
/// unprocessed input or unwritten output; otherwise they go back here, so
/// thousands of idle connections cost no buffer memory and a busy worker
/// reuses the same few buffers without allocating. Buffers that grew for
/// large values are kept too, within a byte budget, so a workload of large
/// values does not re-grow (and re-copy) a buffer for every request.
#[derive(Default)]
pub struct BufPool {
    rbufs: Vec<Vec<u8>>,
    wbufs: Vec<Vec<u8>>,
    big_r: Vec<Vec<u8>>,
    big_r_bytes: usize,
    big_w: Vec<Vec<u8>>,
    big_w_bytes: usize,
}

impl BufPool {
    fn take_r(&mut self) -> Vec<u8> {
        if let Some(b) = self.big_r.pop() {
            self.big_r_bytes -= b.len();
            return b;
        }
        self.rbufs.pop().unwrap_or_else(|| vec![0; RBUF_INIT])
    }
    fn put_r(&mut self, b: Vec<u8>) {
        if b.len() == RBUF_INIT {
            if self.rbufs.len() < POOL_KEEP {
                self.rbufs.push(b);
            }
        } else if b.len() <= BIG_MAX && self.big_r_bytes + b.len() <= BIG_BUDGET {
            self.big_r_bytes += b.len();
            self.big_r.push(b);
        }
    }
    /// Replaces a full read buffer by a bigger one (at most `cap`), keeping
    /// its first `used` bytes: a pooled big buffer if one is larger,
    /// otherwise the buffer doubles.
    fn grow_r(&mut self, buf: &mut Vec<u8>, used: usize, cap: usize) {
        if let Some(pos) = self
            .big_r
            .iter()
            .position(|b| b.len() > buf.len() && b.len() <= cap)
        {
            let mut big = self.big_r.swap_remove(pos);
            self.big_r_bytes -= big.len();
            big[..used].copy_from_slice(&buf[..used]);
            let old = std::mem::replace(buf, big);
            self.put_r(old);
        } else {
            let grown = (buf.len() * 2).min(cap);
            buf.resize(grown, 0);
        }
    }
    fn take_w(&mut self) -> Vec<u8> {
        if let Some(b) = self.big_w.pop() {
            self.big_w_bytes -= b.capacity();
            return b;
        }
        self.wbufs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(WBUF_INIT))
    }
    fn put_w(&mut self, mut b: Vec<u8>) {
        b.clear();
        let cap = b.capacity();
        if (WBUF_INIT..=WBUF_KEEP).contains(&cap) {
            if self.wbufs.len() < POOL_KEEP {
                self.wbufs.push(b);
            }
        } else if cap > WBUF_KEEP && cap <= BIG_MAX && self.big_w_bytes + cap <= BIG_BUDGET {
            self.big_w_bytes += cap;
            self.big_w.push(b);
        }
    }
}

/// The socket of a connection, TCP or unix.
pub enum Sock {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read_vectored(bufs),
            Sock::Unix(s) => s.read_vectored(bufs),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write_vectored(bufs),
            Sock::Unix(s) => s.write_vectored(bufs),
        }
    }
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Sock::Tcp(s) => s,
            Sock::Unix(s) => s,
        }
    }
}

/// The protocol's way to send a large value straight from the item (see
/// [`Out`]): one non-blocking `writev`, counted in `bytes_written`.
struct SockWriter<'a> {
    sock: &'a mut Sock,
    stats: &'a WorkerStats,
}

impl DirectWrite for SockWriter<'_> {
    fn write_now(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        loop {
            match self.sock.write_vectored(bufs) {
                Ok(n) => {
                    self.stats.bytes_written.add(n as u64);
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock, or an error the next `flush` reports.
                Err(_) => return 0,
            }
        }
    }
}

/// Buffer and fairness limits, the same for every connection of a server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest read buffer: `-I` plus room for the command line and more.
    pub rcap: usize,
    /// Stop reading (and ask the protocol to stop) above this much output.
    pub out_limit: usize,
    /// `-R`: requests (and read rounds) per turn before yielding to others.
    pub reqs_per_event: usize,
}

/// What the worker should do with the connection after [`Connection::drive`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do until the next readiness event.
    Idle,
    /// More work is ready; service it again after the other connections.
    Yield,
    /// Close it now.
    Close,
    /// Replies wait in the output buffer for the worker's batched send
    /// ([`Connection::defer_flush`]), which revisits the connection
    /// afterwards if it has more to do ([`Connection::has_more`]).
    Flush,
}

pub struct Connection {
    pub sock: Sock,
    pub info: Arc<ConnInfo>,
    session: Session,
    /// Read buffer; `rbuf[..rlen]` holds unprocessed input. Its length is
    /// its usable size (kept initialised so reads need no memset); empty
    /// while the connection has nothing buffered (see [`BufPool`]).
    rbuf: Vec<u8>,
    rlen: usize,
    /// Replies; `wbuf[wpos..]` is not yet written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The socket may have more to read (no WouldBlock since the last event).
    pub readable: bool,
    /// The peer's FIN was reported: read until EOF even after short reads.
    pub read_closed: bool,
    eof: bool,
    close_after_flush: bool,
    /// Unprocessed input may hold complete requests.
    need_process: bool,
    /// Already on the worker's list of connections to revisit.
    pub pending: bool,
    /// Leave replies for the worker to send in one batch with other
    /// connections' (see `server::batch_send`) instead of writing them here.
    pub defer_flush: bool,
    /// Already on the worker's list for the batched send.
    pub send_queued: bool,
    /// A read ahead of `drive` ([`Connection::read_ahead`]) failed: close.
    read_failed: bool,
    /// Input was read ahead of `drive`: process it before reading more.
    read_ahead: bool,
    /// A large value went straight to the socket (`Out`'s direct write)
    /// since [`Connection::take_sent_direct`]: its client was woken mid-pass.
    sent_direct: bool,
    /// Reads left that stop at `SMALL_READ` bytes: set when a data block
    /// was read straight into its item (see `read_some`).
    small_reads: u8,
}

impl Connection {
    pub fn new(sock: Sock, info: Arc<ConnInfo>) -> Connection {
        Connection {
            sock,
            info,
            session: Session {
                nread_ok: true,
                ..Session::default()
            },
            rbuf: Vec::new(),
            rlen: 0,
            wbuf: Vec::new(),
            wpos: 0,
            readable: true,
            read_closed: false,
            eof: false,
            close_after_flush: false,
            need_process: false,
            pending: false,
            defer_flush: false,
            send_queued: false,
            read_failed: false,
            read_ahead: false,
            sent_direct: false,
            small_reads: 0,
        }
    }

    /// Did a large value go straight to the socket since the last call?
    pub fn take_sent_direct(&mut self) -> bool {
        std::mem::take(&mut self.sent_direct)
    }

    /// Unsent replies, for a batched send.
    pub fn unsent(&self) -> &[u8] {
        &self.wbuf[self.wpos..]
    }

    /// Whether the connection has more to do right away (after a batched
    /// send): more input, unprocessed requests, or a close to finish.
    pub fn has_more(&self) -> bool {
        self.readable || self.need_process || self.close_after_flush || self.eof
    }

    /// The state `stats conns` shows while the connection waits for an
    /// event: for output to drain, for the rest of a data block or a
    /// request line, or for a new request.
    pub fn show_idle_state(&self) {
        self.info.set_state(if self.out_pending() > 0 {
            ConnState::Mwrite
        } else if self.session.in_data_block {
            ConnState::Nread
        } else if self.rlen > 0 {
            ConnState::Read
        } else {
            ConnState::Waiting
        });
    }

    /// Records a batched send's result. `Ok(true)`: output is left that no
    /// writable event will announce (EINTR), so revisit the connection;
    /// `Ok(false)`: all sent, or the socket is full and its writable event
    /// comes back; an error closes the connection.
    pub fn sent(&mut self, ctx: &Ctx, res: io::Result<usize>) -> io::Result<bool> {
        let revisit = match self.settle_write(ctx, res) {
            None => true,
            Some(r) => {
                r?;
                false
            }
        };
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        Ok(revisit)
    }

    /// What a write's result means: `None` to retry (EINTR), `Ok(true)`
    /// when bytes went out (counted, and `wpos` advanced), `Ok(false)` when
    /// the socket is full, an error (a zero-byte write is one) to close.
    fn settle_write(&mut self, ctx: &Ctx, res: io::Result<usize>) -> Option<io::Result<bool>> {
        match res {
            Ok(0) => Some(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                self.wpos += n;
                ctx.stats.bytes_written.add(n as u64);
                Some(Ok(true))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(Ok(false)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn out_pending(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Writes pending output until done or the socket would block.
    fn flush(&mut self, ctx: &Ctx) -> io::Result<()> {
        while self.wpos < self.wbuf.len() {
            let res = self.sock.write(&self.wbuf[self.wpos..]);
            if let Some(wrote) = self.settle_write(ctx, res) {
                if !wrote? {
                    return Ok(()); // the writable event brings us back
                }
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(())
    }

    /// One read into the free part of the buffer. Returns bytes read.
    fn read_some(&mut self, ctx: &Ctx, lim: &Limits, pool: &mut BufPool) -> io::Result<usize> {
        if self.rbuf.is_empty() {
            self.rbuf = pool.take_r();
        }
        if self.rlen == self.rbuf.len() {
            if self.rbuf.len() >= lim.rcap {
                return Ok(0); // full: the protocol must consume first
            }
            pool.grow_r(&mut self.rbuf, self.rlen, lim.rcap);
        }
        if self.rlen == 0 {
            if let Some(want) = self.session.nread_space().map(|s| s.len()) {
                return self.read_into_item(ctx, want);
            }
        }
        let mut room = self.rbuf.len() - self.rlen;
        if self.rlen == 0 && self.small_reads > 0 {
            self.small_reads -= 1;
            room = room.min(SMALL_READ);
        }
        loop {
            let res = self.sock.read(&mut self.rbuf[self.rlen..self.rlen + room]);
            match self.settle_read(res, room) {
                None => continue,
                Some(Ok(n)) if n > 0 => {
                    self.rlen += n;
                    ctx.stats.bytes_read.add(n as u64);
                    return Ok(n);
                }
                Some(done) => return done,
            }
        }
    }

    /// What a read's result means for the connection: `None` to retry
    /// (EINTR); end of input sets `eof` and WouldBlock clears `readable`
    /// (both `Ok(0)`); a short read (fewer than `room` bytes) drained the
    /// socket, so `readable` is cleared too: the read after it would only
    /// say EAGAIN, and new data brings a new edge.
    fn settle_read(&mut self, res: io::Result<usize>, room: usize) -> Option<io::Result<usize>> {
        match res {
            Ok(0) => {
                self.eof = true;
                Some(Ok(0))
            }
            Ok(n) => {
                if n < room && !self.read_closed {
                    self.readable = false;
                }
                Some(Ok(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Some(Ok(0))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// One read while a large data block is read into its item (see
    /// `protocol::nread`): value bytes go straight into the item's memory,
    /// whatever follows them (the "\r\n", the next requests) into the empty
    /// read buffer, with one `readv`. `want` is the item space on offer.
    fn read_into_item(&mut self, ctx: &Ctx, want: usize) -> io::Result<usize> {
        loop {
            let room = want + self.rbuf.len();
            let res = match self.session.nread_space() {
                Some(space) => {
                    let mut iov = [IoSliceMut::new(space), IoSliceMut::new(&mut self.rbuf[..])];
                    self.sock.read_vectored(&mut iov)
                }
                None => return Ok(0),
            };
            match self.settle_read(res, room) {
                None => continue,
                Some(Ok(n)) if n > 0 => {
                    self.info.touch(crate::clock::now());
                    self.small_reads = SMALL_READS;
                    let into_item = n.min(want);
                    self.session.nread_advance(into_item);
                    self.rlen = n - into_item;
                    ctx.stats.bytes_read.add(n as u64);
                    return Ok(n);
                }
                Some(done) => return done,
            }
        }
    }

    /// Runs the protocol over the unprocessed input. Returns whether it made
    /// progress (consumed input or wrote replies: a multi-get cut short by
    /// the output limit does only the latter) and whether the `-R` request
    /// limit stopped it (time to yield).
    fn process(&mut self, ctx: &Ctx, lim: &Limits, pool: &mut BufPool) -> (bool, bool) {
        self.info.set_state(ConnState::ParseCmd);
        if self.wbuf.capacity() == 0 {
            self.wbuf = pool.take_w();
        }
        if self.wpos > 0 {
            // Drop what the client already took: otherwise a reader that
            // never quite catches up keeps every byte written since the
            // buffer was last empty (a long streamed multi-get).
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        self.session.max_requests = lim.reqs_per_event;
        let before = self.wbuf.len();
        let mut direct = SockWriter {
            sock: &mut self.sock,
            stats: ctx.stats,
        };
        let mut out = Out::with_direct(&mut self.wbuf, 0, &mut direct);
        let p = protocol::process_out(
            &mut self.session,
            &self.rbuf[..self.rlen],
            &mut out,
            ctx,
            lim.out_limit,
        );
        // Large values may have gone out already, with what preceded them.
        self.wpos = out.sent();
        self.sent_direct |= self.wpos > 0;
        let consumed = p.consumed.min(self.rlen);
        if consumed > 0 {
            self.info.touch(crate::clock::now());
            self.rbuf.copy_within(consumed..self.rlen, 0);
            self.rlen -= consumed;
        }
        if p.close {
            self.close_after_flush = true;
        }
        // Leftover input is an incomplete request (wait for bytes), or
        // requests held back by the output limit (back-pressure; this
        // includes a multi-get line half answered) or by the request limit
        // (yield to the worker's other connections).
        self.need_process = p.yielded && self.rlen > 0;
        let wrote = self.wbuf.len() - before;
        let request_limited = self.need_process && wrote <= lim.out_limit;
        (consumed > 0 || wrote > 0, request_limited)
    }

    /// Returns empty buffers to the pool (a grown read buffer is freed).
    pub fn release_buffers(&mut self, pool: &mut BufPool) {
        if self.rlen == 0 && !self.rbuf.is_empty() {
            pool.put_r(std::mem::take(&mut self.rbuf));
        }
        if self.out_pending() == 0 && self.wbuf.capacity() > 0 {
            self.wpos = 0;
            pool.put_w(std::mem::take(&mut self.wbuf));
        }
    }

    /// The read `drive` would start with, done earlier so the worker can
    /// read all its ready connections first and prefetch what their
    /// requests will look up (see [`Connection::first_key`]).
    pub fn read_ahead(&mut self, ctx: &Ctx, lim: &Limits, pool: &mut BufPool) {
        if !self.readable || self.eof || self.close_after_flush || self.out_pending() > 0 {
            return;
        }
        match self.read_some(ctx, lim, pool) {
            Ok(n) if n > 0 => {
                self.need_process = true;
                self.read_ahead = true;
            }
            Ok(_) => {}
            Err(_) => self.read_failed = true,
        }
    }

    /// The key of the first unprocessed request, if one is visible.
    pub fn first_key(&self) -> Option<&[u8]> {
        if self.rlen == 0 || self.session.in_data_block {
            return None;
        }
        protocol::lookahead::next_request(&self.rbuf[..self.rlen]).and_then(|(key, _)| key)
    }

    /// Services the connection, then hands idle buffers back to the pool.
    pub fn drive(&mut self, ctx: &Ctx, lim: &Limits, pool: &mut BufPool) -> Outcome {
        let out = self.drive_inner(ctx, lim, pool);
        if out == Outcome::Idle {
            self.release_buffers(pool);
        }
        out
    }

    fn drive_inner(&mut self, ctx: &Ctx, lim: &Limits, pool: &mut BufPool) -> Outcome {
        if self.read_failed {
            return Outcome::Close;
        }
        let mut rounds = 0;
        loop {
            if self.out_pending() > 0 && self.flush(ctx).is_err() {
                return Outcome::Close;
            }
            if self.close_after_flush {
                if self.out_pending() == 0 {
                    return Outcome::Close;
                }
                self.info.set_state(ConnState::Mwrite);
                return Outcome::Idle; // the writable event brings us back
            }
            if self.out_pending() > lim.out_limit {
                // Back-pressure: leave input in the socket until replies drain.
                self.info.set_state(ConnState::Mwrite);
                return Outcome::Idle;
            }
            let mut got = 0;
            // Input read ahead is processed before reading more: a large
            // data block must start (`protocol::nread`) before the rest of
            // it is read, or the rest lands in the buffer instead of the item.
            let read_ahead = std::mem::take(&mut self.read_ahead);
            if self.readable && !self.eof && !read_ahead {
                match self.read_some(ctx, lim, pool) {
                    Ok(n) => got = n,
                    Err(_) => return Outcome::Close,
                }
                if got > 0 {
                    self.need_process = true;
                }
            }
            let mut progress = false;
            if self.need_process {
                let request_limited;
                (progress, request_limited) = self.process(ctx, lim, pool);
                if self.defer_flush && self.out_pending() > 0 {
                    if request_limited && !self.close_after_flush {
                        ctx.stats.conn_yields.incr();
                    }
                    return Outcome::Flush; // `has_more` brings it back
                }
                if self.out_pending() > 0 && self.flush(ctx).is_err() {
                    return Outcome::Close;
                }
                if request_limited && !self.close_after_flush {
                    ctx.stats.conn_yields.incr();
                    return Outcome::Yield;
                }
            }
            // Going idle is safe only when nothing could be processed: after
            // output was written (and maybe fully flushed, so no writable
            // event will come) a held-back request must be retried here.
            if got == 0 && !progress && !read_ahead {
                if self.eof {
                    // Peer finished sending; answer what it sent, then close.
                    self.close_after_flush = true;
                    continue;
                }
                if self.rlen == self.rbuf.len() && self.rlen >= lim.rcap {
                    log::warn!(
                        "closing {}: {} bytes buffered without a complete request",
                        self.info.addr,
                        self.rlen
                    );
                    return Outcome::Close;
                }
                self.show_idle_state();
                return Outcome::Idle;
            }
            // Backstop for clients whose requests trickle in one read at a time.
            rounds += 1;
            if rounds >= lim.reqs_per_event && (self.readable || self.need_process) {
                ctx.stats.conn_yields.incr();
                return Outcome::Yield;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_grown_buffers_within_budget() {
        let mut pool = BufPool::default();
        let mut r = pool.take_r();
        assert_eq!(r.len(), RBUF_INIT);
        r[..5].copy_from_slice(b"hello");
        pool.grow_r(&mut r, 5, 1 << 20);
        assert_eq!(r.len(), 2 * RBUF_INIT);
        assert_eq!(&r[..5], b"hello");
        pool.put_r(r);
        // The grown buffer comes back first, and growing prefers pooled ones.
        let mut small = vec![0u8; RBUF_INIT];
        small[..3].copy_from_slice(b"abc");
        pool.grow_r(&mut small, 3, 1 << 20);
        assert_eq!(small.len(), 2 * RBUF_INIT);
        assert_eq!(&small[..3], b"abc");
        assert_eq!(pool.rbufs.len(), 1, "the small one went back to the pool");
        // Never above the budget, never buffers above BIG_MAX.
        for _ in 0..100 {
            pool.put_r(vec![0; 512 << 10]);
        }
        pool.put_r(vec![0; BIG_MAX + 1]);
        assert!(pool.big_r_bytes <= BIG_BUDGET);
        assert!(pool.big_r.iter().all(|b| b.len() <= BIG_MAX));
        let mut w = pool.take_w();
        w.extend_from_slice(&[1u8; 300 << 10]);
        pool.put_w(w);
        assert_eq!(pool.big_w.len(), 1);
        let w = pool.take_w();
        assert!(w.is_empty() && w.capacity() >= 300 << 10);
    }
}
