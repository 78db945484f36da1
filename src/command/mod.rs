//! The command layer: one set of commands executed against the store by
//! every protocol. Protocol modules turn bytes into these command types and
//! their outcomes back into bytes; this module is where a command meets the
//! store and the stats, so every protocol counts `cmd_get`, `get_hits`, ...
//! the same way memcached does.

pub mod admin;
pub mod arith;
pub mod delete;
pub mod meta;
pub mod retrieve;
pub mod update;

use crate::config::Config;
use crate::stats::{ServerStats, WorkerStats};
use crate::storage::Store;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

pub use admin::{FlushAll, MemLimit, MemLimitOutcome, Verbosity};
pub use arith::Arith;
pub use delete::Delete;
pub use retrieve::{Retrieve, Touch};
pub use update::Update;

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// What the server lets the command layer do to it (implemented by `server`).
pub trait ServerControl: Send + Sync {
    /// Begin a graceful shutdown (the `shutdown` command, with `-A`).
    fn shutdown(&self);
    /// Rows for `stats conns`.
    fn conn_stats(&self) -> Vec<(String, String)>;
}

/// State shared by every worker thread.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub server_stats: ServerStats,
    /// Every worker's counters, registered at start-up; summed by `stats`.
    pub workers: OnceLock<Vec<Arc<WorkerStats>>>,
    pub verbosity: AtomicU32,
    pub control: OnceLock<Box<dyn ServerControl>>,
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        let store = Store::new(config.store_config());
        Shared {
            verbosity: AtomicU32::new(config.verbose as u32),
            config,
            store,
            server_stats: ServerStats::default(),
            workers: OnceLock::new(),
            control: OnceLock::new(),
        }
    }
}

/// What one connection's commands run with.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub stats: &'a WorkerStats,
}

impl Ctx<'_> {
    /// `-D`: the character ending a key's prefix for `stats detail`.
    #[inline]
    pub fn prefix_delimiter(&self) -> u8 {
        let d = self.shared.config.prefix_delimiter;
        if d.is_ascii() {
            d as u8
        } else {
            b':'
        }
    }
}
