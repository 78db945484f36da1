//! The acceptor loop: accepts on every listener, enforces `-c` (memcached's
//! maxconns_fast: accept, answer `ERROR Too many open connections`, close;
//! with `no_maxconns_fast`: stop accepting until a slot frees), hands
//! sockets round-robin to workers, and turns SIGINT/SIGTERM or the
//! `shutdown` command into a stop.

use super::control::ControlInner;
use super::listener::{Accepted, Listener};
use super::signals::SignalPipe;
use super::worker::NewConn;
use crate::command::Shared;
use crossbeam::channel::Sender;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub const WAKE: Token = Token(usize::MAX - 1);
const SIGNAL: Token = Token(usize::MAX - 2);

const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

pub struct Acceptor {
    poll: Poll,
    listeners: Vec<(Listener, Arc<str>)>,
    signals: SignalPipe,
    workers: Vec<(Sender<NewConn>, Arc<Waker>)>,
    next: usize,
    shared: Arc<Shared>,
    control: Arc<ControlInner>,
    /// At the connection limit with no_maxconns_fast: not accepting.
    paused: bool,
    /// UDP "connections" included in curr_connections but not in `-c`.
    udp_conns: u64,
}

impl Acceptor {
    pub fn new(
        poll: Poll,
        listeners: Vec<Listener>,
        signals: SignalPipe,
        workers: Vec<(Sender<NewConn>, Arc<Waker>)>,
        shared: Arc<Shared>,
        control: Arc<ControlInner>,
        udp_conns: u64,
    ) -> io::Result<Acceptor> {
        let mut ls = Vec::with_capacity(listeners.len());
        for (i, mut l) in listeners.into_iter().enumerate() {
            match &mut l {
                Listener::Tcp(s, _) => poll.registry().register(s, Token(i), Interest::READABLE)?,
                Listener::Unix(s, _) => {
                    poll.registry().register(s, Token(i), Interest::READABLE)?
                }
            }
            let name: Arc<str> = Arc::from(l.name());
            ls.push((l, name));
        }
        let fd = signals.fd();
        poll.registry()
            .register(&mut SourceFd(&fd), SIGNAL, Interest::READABLE)?;
        Ok(Acceptor {
            poll,
            listeners: ls,
            signals,
            workers,
            next: 0,
            shared,
            control,
            paused: false,
            udp_conns,
        })
    }

    pub fn wake_workers(&self) {
        for (_, w) in &self.workers {
            let _ = w.wake();
        }
    }

    /// Runs until a stop is requested (Ok) or polling fails (Err).
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = self.paused.then_some(Duration::from_millis(10));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("acceptor poll failed: {e}");
                return Err(e);
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL => {
                        if self.signals.drain() {
                            log::info!("signal received, shutting down");
                            self.control.stop.store(true, Ordering::SeqCst);
                        }
                    }
                    WAKE => {}
                    Token(i) => self.accept_all(i),
                }
            }
            if self.control.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            if self.paused {
                self.paused = false;
                for i in 0..self.listeners.len() {
                    self.accept_all(i);
                }
            }
        }
    }

    fn at_limit(&self) -> bool {
        self.shared
            .server_stats
            .curr_connections
            .load(Ordering::Relaxed)
            .saturating_sub(self.udp_conns)
            >= self.shared.config.conn_limit as u64
    }

    /// Accepts until the listener would block.
    fn accept_all(&mut self, i: usize) {
        loop {
            if !self.shared.config.maxconns_fast && self.at_limit() {
                self.paused = true;
                return;
            }
            let res = match &self.listeners[i].0 {
                Listener::Tcp(l, _) => l.accept().map(|(s, peer)| {
                    let _ = s.set_nodelay(true);
                    (Accepted::Tcp(s), format!("tcp:{peer}"))
                }),
                Listener::Unix(l, name) => {
                    l.accept().map(|(s, _)| (Accepted::Unix(s), name.clone()))
                }
            };
            match res {
                Ok((sock, addr)) => self.dispatch(i, sock, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE and friends: back off and retry shortly.
                    log::warn!("accept failed: {e}");
                    self.paused = true;
                    return;
                }
            }
        }
    }

    fn dispatch(&mut self, i: usize, sock: Accepted, addr: String) {
        let ss = &self.shared.server_stats;
        if self.at_limit() {
            let _ = match sock {
                Accepted::Tcp(mut s) => s.write(TOO_MANY),
                Accepted::Unix(mut s) => s.write(TOO_MANY),
            };
            ss.rejected_connections.fetch_add(1, Ordering::Relaxed);
            return;
        }
        ss.curr_connections.fetch_add(1, Ordering::Relaxed);
        ss.total_connections.fetch_add(1, Ordering::Relaxed);
        let mut nc = NewConn {
            sock,
            addr,
            listen_addr: self.listeners[i].1.clone(),
        };
        // Round-robin; skip a worker whose thread is gone.
        for _ in 0..self.workers.len() {
            let w = self.next % self.workers.len();
            self.next = self.next.wrapping_add(1);
            let (tx, waker) = &self.workers[w];
            match tx.send(nc) {
                Ok(()) => {
                    let _ = waker.wake();
                    return;
                }
                Err(e) => nc = e.into_inner(),
            }
        }
        log::error!("no worker thread left to take connections");
        ss.curr_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
