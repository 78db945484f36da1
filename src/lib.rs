//! memcrab: a memcached-compatible cache server.
//!
//! `config` parses memcached's flags; `server` runs the event loops;
//! `protocol` turns bytes into commands; `command` executes them against
//! `storage`; `stats` counts. See ARCHITECTURE.md.

pub mod clock;
pub mod command;
pub mod config;
pub mod decimal;
pub mod protocol;
pub mod server;
pub mod stats;
pub mod storage;

/// The version reported by `version` and `stats`: memcached's number first
/// because clients branch on it.
pub const VERSION: &str = "1.6.21";
