//! Networking: listeners, one mio event loop per worker thread, connection
//! buffers. Knows nothing about commands beyond `protocol::process`.
//!
//! Threads: the caller's thread becomes the acceptor (listeners, signals,
//! shutdown); `-t` workers each own a `mio::Poll` and their connections.
//! Accepted sockets go round-robin to workers over a channel plus a waker.
//! With `-U`, each UDP socket is served by `-t` blocking threads, one per
//! dup of the socket, as memcached lays it out (see `udp`).

mod acceptor;
mod batch_send;
pub use batch_send::BatchSender;
mod connection;
mod control;
pub mod daemon;
mod listener;
mod signals;
mod udp;
mod worker;

pub use connection::Limits;
pub use listener::split_host_port;

use crate::command::Shared;
use crate::stats::WorkerStats;
use control::{Control, ControlInner, Registry};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use worker::{NewConn, Worker, WAKE};

/// Output held for a client before we stop reading its requests.
pub const OUT_LIMIT: usize = 256 * 1024;

/// Runs the server until shutdown. Returns the process exit code.
pub fn run(shared: Arc<Shared>) -> std::io::Result<i32> {
    crate::clock::init();
    let cfg = &shared.config;
    if cfg.resp_port != 0 {
        log::warn!(
            "--resp-port {}: the RESP adapter is not available yet",
            cfg.resp_port
        );
    }
    let listeners = listener::bind_all(cfg)?;
    let udp_sockets = udp::bind_all(cfg)?;
    daemon::drop_privileges(cfg);
    let signals = signals::SignalPipe::install()?;

    let acceptor_poll = mio::Poll::new()?;
    let acceptor_waker = mio::Waker::new(acceptor_poll.registry(), acceptor::WAKE)?;

    let n = cfg.threads.max(1);
    if n > 64 {
        log::warn!("WARNING: Setting a high number of worker threads is not recommended. Set this value to the number of cores in your machine or less.");
    }
    let limits = Limits {
        // A whole item plus its command line, or the longest multi-get line
        // the protocol waits for; buffers grow to this only when needed.
        rcap: (cfg.item_size_max + 64 * 1024).max(crate::protocol::MAX_MULTIGET_LINE + 64 * 1024),
        out_limit: OUT_LIMIT,
        reqs_per_event: cfg.reqs_per_event.max(1),
    };
    let mut polls = Vec::with_capacity(n);
    let mut handoffs = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    let mut registries: Vec<Arc<Registry>> = Vec::with_capacity(n);
    let mut stats = Vec::with_capacity(n);
    for _ in 0..n {
        let poll = mio::Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE)?);
        let (tx, rx) = crossbeam::channel::unbounded::<NewConn>();
        polls.push(poll);
        handoffs.push((tx, waker));
        receivers.push(rx);
        registries.push(Arc::new(Registry::default()));
        stats.push(Arc::new(WorkerStats::default()));
    }
    // Like memcached, every UDP socket is served by `-t` threads, each on
    // its own dup of the socket (one "UDP connection" per thread). They
    // count into their own blocks, summed by `stats` like the workers'.
    let mut udp_conns = Vec::new();
    for sock in &udp_sockets {
        let name = sock
            .local_addr()
            .map(|a| format!("udp:{a}"))
            .unwrap_or_else(|_| "udp".into());
        for _ in 0..n {
            let s = sock.try_clone()?;
            udp_conns.push((s, name.clone(), Arc::new(WorkerStats::default())));
        }
    }
    drop(udp_sockets);
    let mut all_stats = stats.clone();
    all_stats.extend(udp_conns.iter().map(|u| u.2.clone()));
    let _ = shared.workers.set(all_stats);
    let inner = Arc::new(ControlInner {
        stop: Default::default(),
        acceptor_waker,
        registries: registries.clone(),
        listeners: listeners
            .iter()
            .map(|l| (listener_fd(l), l.name().to_string()))
            .collect(),
        udp: udp_conns
            .iter()
            .map(|(s, name, _)| (s.as_raw_fd(), name.clone()))
            .collect(),
        started: crate::clock::now(),
    });
    let _ = shared.control.set(Box::new(Control(inner.clone())));
    // memcached counts its listening and UDP connections in these (and
    // the UDP ones in curr_connections too).
    let ss = &shared.server_stats;
    let udp_count = udp_conns.len() as u64;
    let fixed = listeners.len() as u64 + udp_count;
    ss.total_connections.store(fixed, Ordering::Relaxed);
    ss.connection_structures.store(fixed, Ordering::Relaxed);
    ss.curr_connections.store(udp_count, Ordering::Relaxed);

    let mut threads = Vec::with_capacity(n);
    for (i, ((poll, rx), (registry, st))) in polls
        .into_iter()
        .zip(receivers)
        .zip(registries.into_iter().zip(stats))
        .enumerate()
    {
        let w = Worker::new(
            poll,
            rx,
            shared.clone(),
            st,
            registry,
            inner.clone(),
            limits,
        );
        threads.push(
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || w.run())?,
        );
    }
    let udp_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (i, (sock, name, st)) in udp_conns.into_iter().enumerate() {
        if i % n == 0 {
            log::info!("listening on {name}");
        }
        let (sh, stop) = (shared.clone(), udp_stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || udp::serve(sock, sh, st, stop))?,
        );
    }
    for l in &listeners {
        log::info!("listening on {}", l.name());
    }
    let mut acc = acceptor::Acceptor::new(
        acceptor_poll,
        listeners,
        signals,
        handoffs,
        shared.clone(),
        inner.clone(),
        udp_count,
    )?;
    let result = acc.run();

    // Graceful stop: workers close their connections and exit.
    inner.stop.store(true, Ordering::SeqCst);
    udp_stop.store(true, Ordering::SeqCst);
    acc.wake_workers();
    for t in threads {
        let _ = t.join();
    }
    if let Some(path) = &shared.config.unix_socket {
        let _ = std::fs::remove_file(path);
    }
    if shared.config.daemonize {
        if let Some(p) = &shared.config.pidfile {
            let _ = std::fs::remove_file(p);
        }
    }
    log::info!("shut down");
    result.map(|()| 0)
}

fn listener_fd(l: &listener::Listener) -> i32 {
    match l {
        listener::Listener::Tcp(s, _) => s.as_raw_fd(),
        listener::Listener::Unix(s, _) => s.as_raw_fd(),
    }
}
