//! What the command layer may ask of the server ([`ServerControl`]): a
//! graceful shutdown and the `stats conns` rows. Each worker publishes its
//! connections in a registry touched only when a connection opens or
//! closes; per-request bookkeeping (last command time, state) lives in
//! atomics inside [`ConnInfo`], so the request path takes no lock.

use crate::command::ServerControl;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

/// Connection states as `stats conns` names them (memcached's conn_* names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    Waiting = 0,
    Read = 1,
    ParseCmd = 2,
    Mwrite = 3,
    Nread = 4,
}

impl ConnState {
    fn name(v: u8) -> &'static str {
        match v {
            0 => "conn_waiting",
            1 => "conn_read",
            2 => "conn_parse_cmd",
            3 => "conn_mwrite",
            _ => "conn_nread",
        }
    }
}

/// One connection as other threads may see it.
pub struct ConnInfo {
    pub fd: i32,
    pub addr: String,
    pub listen_addr: Arc<str>,
    /// Relative time (clock::now) of the last command; idle sweeps read it.
    pub last_cmd: AtomicU32,
    state: AtomicU8,
}

impl ConnInfo {
    pub fn new(fd: i32, addr: String, listen_addr: Arc<str>) -> ConnInfo {
        ConnInfo {
            fd,
            addr,
            listen_addr,
            last_cmd: AtomicU32::new(crate::clock::now()),
            state: AtomicU8::new(ConnState::Waiting as u8),
        }
    }

    #[inline]
    pub fn set_state(&self, s: ConnState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    #[inline]
    pub fn touch(&self, now: u32) {
        self.last_cmd.store(now, Ordering::Relaxed);
    }
}

/// A worker's open connections, by token.
pub type Registry = Mutex<HashMap<usize, Arc<ConnInfo>>>;

/// Shared between the acceptor, the workers and `Shared::control`.
pub struct ControlInner {
    pub stop: AtomicBool,
    pub acceptor_waker: mio::Waker,
    pub registries: Vec<Arc<Registry>>,
    /// (fd, name) of each listening socket.
    pub listeners: Vec<(i32, String)>,
    /// (fd, name) of each per-thread UDP socket.
    pub udp: Vec<(i32, String)>,
    /// Relative time the listeners were opened (their "last command").
    pub started: u32,
}

/// The [`ServerControl`] installed in `Shared::control`.
pub struct Control(pub Arc<ControlInner>);

impl ServerControl for Control {
    fn shutdown(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        let _ = self.0.acceptor_waker.wake();
    }

    fn conn_stats(&self) -> Vec<(String, String)> {
        let now = crate::clock::now();
        let mut conns: Vec<Arc<ConnInfo>> = Vec::new();
        for r in &self.0.registries {
            conns.extend(r.lock().values().cloned());
        }
        let mut rows: Vec<(i32, Vec<(String, String)>)> = Vec::new();
        for (fd, name) in &self.0.listeners {
            rows.push((
                *fd,
                vec![
                    (format!("{fd}:addr"), name.clone()),
                    (format!("{fd}:state"), "conn_listening".into()),
                    (
                        format!("{fd}:secs_since_last_cmd"),
                        now.saturating_sub(self.0.started).to_string(),
                    ),
                ],
            ));
        }
        let since_start = now.saturating_sub(self.0.started).to_string();
        for (fd, name) in &self.0.udp {
            rows.push((
                *fd,
                vec![
                    (format!("{fd}:UDP"), "UDP".into()),
                    (format!("{fd}:addr"), name.clone()),
                    (format!("{fd}:state"), "conn_read".into()),
                    (format!("{fd}:secs_since_last_cmd"), since_start.clone()),
                ],
            ));
        }
        for c in conns {
            let fd = c.fd;
            let idle = now.saturating_sub(c.last_cmd.load(Ordering::Relaxed));
            rows.push((
                fd,
                vec![
                    (format!("{fd}:addr"), c.addr.clone()),
                    (format!("{fd}:listen_addr"), c.listen_addr.to_string()),
                    (
                        format!("{fd}:state"),
                        ConnState::name(c.state.load(Ordering::Relaxed)).into(),
                    ),
                    (format!("{fd}:secs_since_last_cmd"), idle.to_string()),
                ],
            ));
        }
        rows.sort_by_key(|r| r.0);
        rows.into_iter().flat_map(|r| r.1).collect()
    }
}
