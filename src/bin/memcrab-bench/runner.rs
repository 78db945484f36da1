//! A generator thread: connects its share of connections, then drives them
//! with one mio event loop through the preload and measured phases.

use crate::conn::{Conn, Source, Window};
use crate::stats::ThreadStats;
use crate::workload::{KeyPicker, Spec};
use mio::{Events, Interest, Poll, Token};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// State shared by the generator threads and the main thread.
pub struct Shared {
    /// Bulk mode's batches (the measured phase then runs `bulk::drive`).
    pub bulk: Option<crate::bulk::Pool>,
    pub spec: Spec,
    pub picker: KeyPicker,
    pub addr: SocketAddr,
    pub depth: usize,
    pub batch_send: bool,
    pub preload: bool,
    pub preload_only: bool,
    pub preload_next: AtomicU64,
    pub preload_errors: AtomicU64,
    /// All threads connected / preloaded.
    pub ready: Barrier,
    pub preloaded: Barrier,
    /// Published by main after the preload: warm-up start and window.
    pub timeline: OnceLock<(Instant, Window)>,
    pub go: Barrier,
    /// Requests recorded so far (for the --max-ops cap), and the cap.
    pub measured: AtomicU64,
    pub max_ops: u64,
    /// Set when the cap is reached.
    pub stop: AtomicBool,
    pub stopped_at: OnceLock<Instant>,
}

impl Shared {
    /// End of a measured pass: publishes the thread's count (see
    /// [`Shared::publish`]) and says whether the run is over (window closed
    /// or op cap reached).
    pub fn pass_done(&self, ops: u64, published: &mut u64, every: u64, window: Window) -> bool {
        self.publish(ops, published, every);
        Instant::now() >= window.end || self.stop.load(Ordering::Acquire)
    }

    /// Adds a thread's requests recorded since `*published` to the shared
    /// count once there are at least `every` of them (one shared write per
    /// batch, not per request), and stops the run at `--max-ops`.
    pub fn publish(&self, ops: u64, published: &mut u64, every: u64) {
        let recorded = ops - *published;
        if recorded >= every {
            *published = ops;
            let total = self.measured.fetch_add(recorded, Ordering::Relaxed) + recorded;
            if total >= self.max_ops && !self.stop.swap(true, Ordering::AcqRel) {
                let _ = self.stopped_at.set(Instant::now());
            }
        }
    }
}

/// How long a generator's event loop waits for events before it looks at
/// its connections anyway.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(5);

/// One wait for events; false (the error recorded) when polling failed.
pub fn wait(poll: &mut Poll, events: &mut Events, st: &mut ThreadStats) -> bool {
    match poll.poll(events, Some(POLL_TIMEOUT)) {
        Err(e) if e.kind() != std::io::ErrorKind::Interrupted => {
            st.first_error.get_or_insert_with(|| format!("poll: {e}"));
            false
        }
        _ => true,
    }
}

pub fn connect(addr: SocketAddr) -> std::io::Result<mio::net::TcpStream> {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(mio::net::TcpStream::from_std(s))
}

/// Runs one generator thread over `nconns` connections.
pub fn thread_main(sh: Arc<Shared>, nconns: usize, seed: u64) -> Result<ThreadStats, String> {
    let mut st = ThreadStats::new();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(nconns);
    let mut connect_err = None;
    for i in 0..nconns {
        match connect(sh.addr) {
            Ok(mut s) => {
                if let Err(e) = poll.registry().register(
                    &mut s,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    connect_err = Some(e.to_string());
                    break;
                }
                conns.push(Conn::new(s, seed.wrapping_add(i as u64 * 0x1000_0001)));
            }
            Err(e) => {
                connect_err = Some(format!("connect {}: {e}", sh.addr));
                break;
            }
        }
    }
    // Always reach the barriers so other threads and main never hang.
    sh.ready.wait();
    if let Some(e) = &connect_err {
        sh.preloaded.wait();
        if !sh.preload_only {
            sh.go.wait();
        }
        return Err(e.clone());
    }

    if sh.preload {
        let src = Source::Preload {
            next: &sh.preload_next,
            total: sh.spec.keys,
        };
        // Bound bytes in flight per connection to ~1 MB while preloading.
        let depth = (1 << 20) / (sh.spec.value.len() + 64).max(1);
        let depth = depth.clamp(1, 32);
        let mut pst = ThreadStats::new();
        drive(
            &mut poll,
            &mut conns,
            &sh,
            &src,
            depth,
            &mut pst,
            None,
            || sh.preload_next.load(Ordering::Relaxed) >= sh.spec.keys,
        );
        let bad = pst.errors + pst.bad_values + pst.proto_errors + pst.conn_errors;
        sh.preload_errors.fetch_add(bad, Ordering::Relaxed);
        if st.first_error.is_none() {
            st.first_error = pst.first_error;
        }
    }
    sh.preloaded.wait();
    if sh.preload_only {
        return Ok(st);
    }
    sh.go.wait();
    let Some(&(_, window)) = sh.timeline.get() else {
        return Err("timeline not published".into());
    };
    if let Some(pool) = &sh.bulk {
        let socks = conns.into_iter().map(Conn::into_socket).collect();
        crate::bulk::drive(&mut poll, socks, &sh, pool, seed, &mut st, window);
        return Ok(st);
    }
    let src = Source::Random(&sh.picker);
    drive(
        &mut poll,
        &mut conns,
        &sh,
        &src,
        sh.depth,
        &mut st,
        Some(window),
        || false,
    );
    Ok(st)
}

/// The event loop. With a window it runs until the window closes (or the op
/// cap stops it); without one until `exhausted()` and nothing is in flight.
#[allow(clippy::too_many_arguments)]
fn drive(
    poll: &mut Poll,
    conns: &mut [Conn],
    sh: &Shared,
    src: &Source,
    depth: usize,
    st: &mut ThreadStats,
    window: Option<Window>,
    exhausted: impl Fn() -> bool,
) {
    let mut events = Events::with_capacity(1024);
    for c in conns.iter_mut() {
        c.fill(&sh.spec, src, depth);
        c.flush(st);
    }
    let mut sender = if sh.batch_send {
        memcrab::server::BatchSender::new()
    } else {
        None
    };
    let mut to_send: Vec<usize> = Vec::new();
    let mut results: Vec<(usize, std::io::Result<usize>)> = Vec::new();
    let mut since_publish = 0u64;
    loop {
        if !wait(poll, &mut events, st) {
            return;
        }
        for ev in events.iter() {
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            if c.dead {
                continue;
            }
            if ev.is_read_closed() || ev.is_error() {
                c.read_closed = true;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let done = c.on_readable(&sh.spec, st, window);
                if done > 0 && !c.dead {
                    c.fill(&sh.spec, src, depth);
                }
            }
            if !c.dead {
                if sender.is_some() {
                    if c.has_unsent() && !c.send_queued {
                        c.send_queued = true;
                        to_send.push(ev.token().0);
                    }
                } else {
                    c.flush(st);
                }
            }
        }
        if let Some(sender) = sender.as_mut() {
            if !to_send.is_empty() {
                sender.send_all(
                    &to_send,
                    |i| conns.get(i).map(|c| (c.fd(), c.unsent())),
                    |i, r| results.push((i, r)),
                );
                for (i, r) in results.drain(..) {
                    conns[i].sent(st, r);
                }
                for i in to_send.drain(..) {
                    conns[i].send_queued = false;
                }
            }
        }
        match window {
            Some(w) => {
                if sh.pass_done(st.ops, &mut since_publish, 1000, w) {
                    return;
                }
            }
            None => {
                if exhausted() && conns.iter().all(|c| c.dead || c.idle()) {
                    return;
                }
            }
        }
        if conns.iter().all(|c| c.dead) {
            return;
        }
    }
}
