//! A worker thread: one mio event loop owning a set of connections. New
//! sockets arrive from the acceptor over a channel, announced by a waker.
//! A pass over the ready connections reads them all (prefetching what their
//! first requests will look up), serves them, then sends all their replies
//! in one batch (`batch_send`).
//! Connections that yielded (`-R`) or still hold work are revisited without
//! waiting for a new edge-triggered event. With `idle_timeout`, a sweep once
//! a second closes connections idle for longer.

use super::batch_send::BatchSender;
use super::connection::{BufPool, Connection, Limits, Outcome, Sock};
use super::control::{ConnInfo, ControlInner, Registry};
use super::listener::Accepted;
use crate::command::{Ctx, Shared};
use crate::stats::WorkerStats;
use crossbeam::channel::Receiver;
use mio::{Events, Interest, Poll, Token};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const WAKE: Token = Token(0);

/// A worker that wrote large values straight from their items waits this
/// many times `worker_yield_us` before yielding: each such write woke its
/// client mid-pass, and a client woken on the worker's core preempts it
/// right there, so the clients have had the core; yielding as often as
/// with small replies only adds switches (100 KB values 50:50: throughput
/// +1 to +10 %, median +1.5 %, better in all 7 A/B rounds; p99 unchanged).
const DIRECT_YIELD_FACTOR: u32 = 4;

/// How long a worker runs without sleeping before it yields.
fn yield_budget(yield_after: Duration, sent_direct: bool) -> Duration {
    if sent_direct {
        yield_after * DIRECT_YIELD_FACTOR
    } else {
        yield_after
    }
}

/// A poll that took longer than this slept (a ready poll returns in ~1 µs).
const SLEPT: Duration = Duration::from_micros(20);

/// A socket on its way to a worker, with the names `stats conns` shows.
pub struct NewConn {
    pub sock: Accepted,
    pub addr: String,
    pub listen_addr: Arc<str>,
}

pub struct Worker {
    pub poll: Poll,
    pub rx: Receiver<NewConn>,
    pub shared: Arc<Shared>,
    pub stats: Arc<WorkerStats>,
    pub registry: Arc<Registry>,
    pub control: Arc<ControlInner>,
    pub limits: Limits,
    conns: Vec<Option<Connection>>,
    free: Vec<usize>,
    pending: Vec<usize>,
    pool: BufPool,
    sender: Option<BatchSender>,
    /// A connection sent a large value directly since the worker last
    /// slept or yielded (see the yield in `run`).
    sent_direct: bool,
    /// Connections whose replies wait for this pass's batched send.
    to_send: Vec<usize>,
    results: Vec<(usize, std::io::Result<usize>)>,
    /// Connections with an event in this pass, in event order.
    ready: Vec<usize>,
    /// Keys of this pass's first requests whose buckets are being loaded.
    prefetched: Vec<crate::storage::Prefetch>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        rx: Receiver<NewConn>,
        shared: Arc<Shared>,
        stats: Arc<WorkerStats>,
        registry: Arc<Registry>,
        control: Arc<ControlInner>,
        limits: Limits,
    ) -> Worker {
        Worker {
            poll,
            rx,
            shared,
            stats,
            registry,
            control,
            limits,
            conns: Vec::new(),
            free: Vec::new(),
            pending: Vec::new(),
            pool: BufPool::default(),
            sender: None,
            sent_direct: false,
            to_send: Vec::new(),
            results: Vec::new(),
            ready: Vec::new(),
            prefetched: Vec::new(),
        }
    }

    pub fn run(mut self) {
        if self.shared.config.batch_send {
            self.sender = BatchSender::new();
        }
        let mut events = Events::with_capacity(1024);
        let idle_timeout = self.shared.config.idle_timeout;
        let yield_after = Duration::from_micros(self.shared.config.worker_yield_us);
        let mut busy_since = Instant::now();
        let mut last_sweep = Instant::now();
        loop {
            let timeout = if !self.pending.is_empty() {
                Some(Duration::ZERO)
            } else if idle_timeout > 0 {
                Some(Duration::from_millis(250))
            } else {
                None
            };
            let before = if yield_after.is_zero() {
                None
            } else {
                Some(Instant::now())
            };
            let polled = self.poll.poll(&mut events, timeout);
            if let Some(before) = before {
                let now = Instant::now();
                if now - before > SLEPT {
                    busy_since = now; // it slept: the core was free for others
                    self.sent_direct = false;
                } else if now - busy_since > yield_budget(yield_after, self.sent_direct) {
                    // Fairness on shared cores: while clients keep it busy a
                    // worker never sleeps in epoll, so it would run a whole
                    // scheduler slice while the clients (and other workers)
                    // sharing its core wait with replies unread, a tail of
                    // milliseconds. Yielding once per `worker_yield_us` of
                    // continuous running bounds that; alone on a core the
                    // yield returns at once.
                    std::thread::yield_now();
                    busy_since = Instant::now();
                    self.sent_direct = false;
                }
            }
            if let Err(e) = polled {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("worker poll failed: {e}");
                break;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKE => self.take_new(),
                    Token(t) => {
                        let idx = t - 1;
                        if let Some(Some(c)) = self.conns.get_mut(idx) {
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                c.readable = true;
                            }
                            if ev.is_read_closed() || ev.is_error() {
                                c.read_closed = true;
                            }
                            self.ready.push(idx);
                        }
                    }
                }
            }
            if self.ready.len() > 1 {
                self.read_ahead_and_prefetch();
            }
            let ready = std::mem::take(&mut self.ready);
            for &idx in &ready {
                self.service(idx);
            }
            self.ready = ready;
            self.ready.clear();
            if !self.pending.is_empty() {
                let list = std::mem::take(&mut self.pending);
                for idx in list {
                    if let Some(Some(c)) = self.conns.get_mut(idx) {
                        c.pending = false;
                        self.service(idx);
                    }
                }
            }
            if !self.to_send.is_empty() {
                self.send_batch();
            }
            if idle_timeout > 0 && last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.sweep_idle(idle_timeout);
            }
            if self.control.stop.load(Ordering::SeqCst) {
                break;
            }
        }
        for idx in 0..self.conns.len() {
            if self.conns[idx].is_some() {
                self.close(idx);
            }
        }
    }

    /// Registers sockets handed over by the acceptor.
    fn take_new(&mut self) {
        while let Ok(nc) = self.rx.try_recv() {
            let (sock, fd) = match nc.sock {
                Accepted::Tcp(s) => {
                    let fd = s.as_raw_fd();
                    (Sock::Tcp(s), fd)
                }
                Accepted::Unix(s) => {
                    let fd = s.as_raw_fd();
                    (Sock::Unix(s), fd)
                }
            };
            let idx = match self.free.pop() {
                Some(i) => i,
                None => {
                    self.conns.push(None);
                    self.shared
                        .server_stats
                        .connection_structures
                        .fetch_add(1, Ordering::Relaxed);
                    self.conns.len() - 1
                }
            };
            let info = Arc::new(ConnInfo::new(fd, nc.addr, nc.listen_addr));
            let mut conn = Connection::new(sock, info.clone());
            conn.defer_flush = self.sender.is_some();
            if let Err(e) = self.poll.registry().register(
                conn.sock.source(),
                Token(idx + 1),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("cannot register connection: {e}");
                self.free.push(idx);
                self.shared
                    .server_stats
                    .curr_connections
                    .fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            log::debug!("<{fd} new client connection from {}", info.addr);
            self.registry.lock().insert(idx, info);
            self.conns[idx] = Some(conn);
        }
    }

    fn service(&mut self, idx: usize) {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let ctx = Ctx {
            shared: &self.shared,
            stats: &self.stats,
        };
        // A bug that panics on one request must not take down the worker
        // and every connection it serves: drop that connection instead.
        let limits = &self.limits;
        let pool = &mut self.pool;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            conn.drive(&ctx, limits, pool)
        }))
        .unwrap_or_else(|_| {
            log::error!("request handling panicked; closing {}", conn.info.addr);
            Outcome::Close
        });
        self.sent_direct |= conn.take_sent_direct();
        match outcome {
            Outcome::Idle => {}
            Outcome::Yield => {
                if !conn.pending {
                    conn.pending = true;
                    self.pending.push(idx);
                }
            }
            Outcome::Close => self.close(idx),
            Outcome::Flush => {
                if !conn.send_queued {
                    conn.send_queued = true;
                    self.to_send.push(idx);
                }
            }
        }
    }

    /// Reads every ready connection before serving any, and meanwhile
    /// starts loading what their first requests will look up: the stripe
    /// and bucket as each request arrives, then the bucket's first item.
    /// The cache misses of a lookup (most of memcrab's own time per small
    /// request) then overlap the other connections' reads instead of
    /// stalling the request that needs them.
    fn read_ahead_and_prefetch(&mut self) {
        let ctx = Ctx {
            shared: &self.shared,
            stats: &self.stats,
        };
        let store = &self.shared.store;
        let mut staged = std::mem::take(&mut self.prefetched);
        for &idx in &self.ready {
            if let Some(Some(c)) = self.conns.get_mut(idx) {
                c.read_ahead(&ctx, &self.limits, &mut self.pool);
                if let Some(key) = c.first_key() {
                    staged.push(store.prefetch_bucket(key));
                }
            }
        }
        for p in staged.drain(..) {
            store.prefetch_item(p);
        }
        self.prefetched = staged;
    }

    /// Sends the replies of this pass's connections in one batch, then
    /// revisits those with more to do and pools idle ones' buffers.
    fn send_batch(&mut self) {
        let list = std::mem::take(&mut self.to_send);
        let Some(sender) = self.sender.as_mut() else {
            return;
        };
        for &idx in &list {
            if let Some(Some(c)) = self.conns.get_mut(idx) {
                c.send_queued = false;
            }
        }
        {
            let conns = &self.conns;
            let results = &mut self.results;
            // One serviced again later in the pass may have flushed its
            // replies itself; it has nothing left to send (skipped).
            sender.send_all(
                &list,
                |idx| match conns.get(idx) {
                    Some(Some(c)) => Some((c.info.fd, c.unsent())),
                    _ => None,
                },
                |idx, r| results.push((idx, r)),
            );
        }
        let ctx = Ctx {
            shared: &self.shared,
            stats: &self.stats,
        };
        let mut closing = Vec::new();
        for (idx, res) in self.results.drain(..) {
            if let Some(Some(c)) = self.conns.get_mut(idx) {
                let revisit = match c.sent(&ctx, res) {
                    Ok(r) => r,
                    Err(_) => {
                        closing.push(idx);
                        continue;
                    }
                };
                if revisit || c.has_more() {
                    if !c.pending {
                        c.pending = true;
                        self.pending.push(idx);
                    }
                } else {
                    c.show_idle_state();
                    c.release_buffers(&mut self.pool);
                }
            }
        }
        for idx in closing {
            self.close(idx);
        }
        // Keep the list's allocation for the next pass.
        let mut list = list;
        list.clear();
        if self.to_send.is_empty() {
            self.to_send = list;
        }
    }

    fn close(&mut self, idx: usize) {
        if let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) {
            let _ = self.poll.registry().deregister(conn.sock.source());
            conn.release_buffers(&mut self.pool);
            log::debug!("<{} connection closed.", conn.info.fd);
            self.registry.lock().remove(&idx);
            self.free.push(idx);
            self.shared
                .server_stats
                .curr_connections
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn sweep_idle(&mut self, idle_timeout: u64) {
        let now = crate::clock::now() as u64;
        let mut kicked = Vec::new();
        for (idx, c) in self.conns.iter().enumerate() {
            if let Some(c) = c {
                let last = c.info.last_cmd.load(Ordering::Relaxed) as u64;
                if now.saturating_sub(last) > idle_timeout {
                    kicked.push(idx);
                }
            }
        }
        for idx in kicked {
            log::debug!("closing idle connection");
            self.shared
                .server_stats
                .idle_kicks
                .fetch_add(1, Ordering::Relaxed);
            self.close(idx);
        }
    }
}
