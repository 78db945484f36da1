//! One load connection: its buffers, the queue of requests in flight, and
//! the read → parse → refill → write cycle driven by readiness events.

use crate::reply::{self, Expect, Parse};
use crate::stats::ThreadStats;
use crate::workload::{KeyPicker, Rng, Spec};
use mio::net::TcpStream;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Where the next request comes from.
pub enum Source<'a> {
    /// Set every key once: indices handed out by a shared counter.
    Preload { next: &'a AtomicU64, total: u64 },
    /// Random gets and sets.
    Random(&'a KeyPicker),
}

/// The measured window; completions outside it are not recorded.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

struct InFlight {
    expect: Expect,
    nkeys: usize,
    sent: Instant,
}

pub struct Conn {
    sock: TcpStream,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    inflight: VecDeque<InFlight>,
    /// Keys of in-flight gets, in order (checked against VALUE lines).
    keyq: VecDeque<u32>,
    scratch: Vec<u32>,
    rng: Rng,
    pub dead: bool,
    /// On the event loop's list for its batched send.
    pub send_queued: bool,
    /// The peer's FIN was reported: read on to the EOF after short reads.
    pub read_closed: bool,
}

const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    pub fn new(sock: TcpStream, seed: u64) -> Conn {
        Conn {
            sock,
            rbuf: vec![0; 2 * READ_CHUNK],
            rstart: 0,
            rend: 0,
            wbuf: Vec::with_capacity(READ_CHUNK),
            wpos: 0,
            inflight: VecDeque::new(),
            keyq: VecDeque::new(),
            scratch: Vec::new(),
            rng: Rng::new(seed),
            dead: false,
            read_closed: false,
            send_queued: false,
        }
    }

    /// The socket and whether the connection is still usable, for bulk
    /// mode's own driver.
    pub fn into_socket(self) -> (TcpStream, bool) {
        (self.sock, !self.dead)
    }

    pub fn idle(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Queues requests until `depth` are in flight (or the source runs dry).
    pub fn fill(&mut self, spec: &Spec, src: &Source, depth: usize) {
        let now = Instant::now();
        while self.inflight.len() < depth {
            match src {
                Source::Preload { next, total } => {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= *total {
                        return;
                    }
                    spec.push_set(&mut self.wbuf, k as u32);
                    self.push(Expect::TextSet, 0, spec, now);
                }
                Source::Random(picker) => {
                    if self.rng.unit() < spec.get_ratio {
                        self.scratch.clear();
                        for _ in 0..spec.mget {
                            let k = picker.pick(&mut self.rng);
                            self.scratch.push(k);
                            self.keyq.push_back(k);
                        }
                        spec.push_get(&mut self.wbuf, &self.scratch);
                        self.push(Expect::TextGet(spec.mget), spec.mget, spec, now);
                    } else {
                        let k = picker.pick(&mut self.rng);
                        spec.push_set(&mut self.wbuf, k);
                        self.push(Expect::TextSet, 0, spec, now);
                    }
                }
            }
        }
    }

    fn push(&mut self, text_expect: Expect, nkeys: usize, spec: &Spec, sent: Instant) {
        let expect = match (spec.protocol, text_expect) {
            (crate::args::Protocol::Meta, Expect::TextGet(n)) => Expect::MetaGet(n),
            (crate::args::Protocol::Meta, Expect::TextSet) => Expect::MetaSet,
            (_, e) => e,
        };
        self.inflight.push_back(InFlight {
            expect,
            nkeys,
            sent,
        });
    }

    /// Writes what it can of the output buffer.
    pub fn flush(&mut self, st: &mut ThreadStats) {
        while self.wpos < self.wbuf.len() {
            let res = self.sock.write(&self.wbuf[self.wpos..]);
            if !self.settle_write(st, res) {
                return;
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
    }

    /// Applies a write's result; false when writing must stop for now
    /// (the socket is full: the writable event brings the rest out; or the
    /// connection failed).
    fn settle_write(&mut self, st: &mut ThreadStats, res: std::io::Result<usize>) -> bool {
        match res {
            Ok(0) => self.fail(st, "write returned 0"),
            Ok(n) => {
                self.wpos += n;
                return true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return true,
            Err(e) => self.fail(st, &format!("write: {e}")),
        }
        false
    }

    pub fn has_unsent(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    pub fn unsent(&self) -> &[u8] {
        &self.wbuf[self.wpos..]
    }

    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    /// Applies a batched send's result, then writes the rest itself unless
    /// the socket is full (its writable event brings the rest) or failed:
    /// after a short send or EINTR no event would announce it.
    pub fn sent(&mut self, st: &mut ThreadStats, res: std::io::Result<usize>) {
        if self.settle_write(st, res) {
            self.flush(st);
        }
    }

    fn fail(&mut self, st: &mut ThreadStats, why: &str) {
        if !self.dead {
            self.dead = true;
            st.conn_errors += 1;
            if st.first_error.is_none() {
                st.first_error = Some(why.to_string());
            }
        }
    }

    /// Reads everything available, then accounts for every complete reply.
    /// Completions inside `window` (or every one, when it is `None`) are
    /// recorded in `st`. Returns the number of requests completed.
    pub fn on_readable(
        &mut self,
        spec: &Spec,
        st: &mut ThreadStats,
        window: Option<Window>,
    ) -> usize {
        loop {
            if self.rbuf.len() - self.rend < READ_CHUNK / 4 {
                if self.rstart > 0 {
                    self.rbuf.copy_within(self.rstart..self.rend, 0);
                    self.rend -= self.rstart;
                    self.rstart = 0;
                }
                if self.rbuf.len() - self.rend < READ_CHUNK / 4 {
                    let n = self.rbuf.len() * 2;
                    self.rbuf.resize(n, 0);
                }
            }
            let room = self.rbuf.len() - self.rend;
            match self.sock.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => {
                    self.fail(st, "server closed the connection");
                    break;
                }
                Ok(n) => {
                    self.rend += n;
                    // A short read drained the socket: the read after it
                    // would only say EAGAIN (new data brings a new edge).
                    // Skipping it halves the generator's reads at depth 1.
                    if n < room && !self.read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(st, &format!("read: {e}"));
                    break;
                }
            }
        }
        let now = Instant::now();
        let record = window.is_none_or(|w| now >= w.start && now < w.end);
        let mut completed = 0;
        while let Some(req) = self.inflight.front() {
            let buf = &self.rbuf[self.rstart..self.rend];
            let (a, b) = self.keyq.as_slices();
            let keys: &[u32] = if a.len() >= req.nkeys {
                &a[..req.nkeys]
            } else {
                self.scratch.clear();
                self.scratch
                    .extend(a.iter().chain(b.iter()).take(req.nkeys));
                &self.scratch
            };
            match reply::parse(buf, req.expect, keys, spec) {
                Parse::Partial => break,
                Parse::Desync(why) => {
                    st.proto_errors += 1;
                    self.fail(st, &format!("protocol desync: {why}"));
                    break;
                }
                Parse::Done(o) => {
                    self.rstart += o.len;
                    if record {
                        st.record(req.expect, req.nkeys, &o, now.duration_since(req.sent));
                    } else {
                        st.unrecorded_errors += (o.errors + o.bad_values) as u64;
                    }
                    self.keyq.drain(..req.nkeys);
                    self.inflight.pop_front();
                    completed += 1;
                }
            }
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        completed
    }
}
