//! Command-line configuration, memcached 1.6 compatible (`-p -l -U -m -c -t -I
//! -f -n -R -C -M -b -v -A -o ...`). `Config::parse_args` turns argv into a
//! `Config` or a usage error (exit 64 like memcached).

use crate::storage::StoreConfig;

/// Everything the server reads from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    /// `-l`: addresses to listen on (each may carry `:port`).
    pub listen: Vec<String>,
    pub udp_port: u16,
    /// `-s`: unix socket path; `-a` its mask.
    pub unix_socket: Option<String>,
    pub unix_mask: u32,
    pub memory_limit_mb: u64,
    pub conn_limit: usize,
    pub threads: usize,
    pub item_size_max: usize,
    pub growth_factor: f64,
    pub chunk_min: usize,
    pub reqs_per_event: usize,
    pub use_cas: bool,
    pub evict_to_free: bool,
    pub backlog: i32,
    pub verbose: u8,
    pub enable_shutdown: bool,
    /// `-B ascii|binary|auto`.
    pub protocol: String,
    /// `-o idle_timeout`: seconds, 0 = never.
    pub idle_timeout: u64,
    pub hot_lru_pct: u32,
    pub warm_lru_pct: u32,
    pub temporary_ttl: u32,
    pub slab_chunk_max: usize,
    pub hashpower: u32,
    pub lru_crawler: bool,
    pub lru_maintainer: bool,
    pub slab_reassign: bool,
    pub slab_automove: u32,
    pub maxconns_fast: bool,
    /// `--resp-port`: Redis RESP adapter (0 = off).
    pub resp_port: u16,
    /// `-o` options we accept but do not implement, as given (for `stats settings`).
    pub unsupported_options: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 11211,
            listen: vec![],
            udp_port: 0,
            unix_socket: None,
            unix_mask: 0o700,
            memory_limit_mb: 64,
            conn_limit: 1024,
            threads: 4,
            item_size_max: 1 << 20,
            growth_factor: 1.25,
            chunk_min: 48,
            reqs_per_event: 20,
            use_cas: true,
            evict_to_free: true,
            backlog: 1024,
            verbose: 0,
            enable_shutdown: false,
            protocol: "auto".into(),
            idle_timeout: 0,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            temporary_ttl: 61,
            slab_chunk_max: 512 << 10,
            hashpower: 16,
            lru_crawler: true,
            lru_maintainer: true,
            slab_reassign: true,
            slab_automove: 1,
            maxconns_fast: true,
            resp_port: 0,
            unsupported_options: vec![],
        }
    }
}

impl Config {
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            memory_limit: (self.memory_limit_mb as usize) << 20,
            item_size_max: self.item_size_max,
            growth_factor: self.growth_factor,
            chunk_min: self.chunk_min,
            use_cas: self.use_cas,
            evict_to_free: self.evict_to_free,
            hot_lru_pct: self.hot_lru_pct,
            warm_lru_pct: self.warm_lru_pct,
            temporary_ttl: self.temporary_ttl,
            slab_chunk_max: self.slab_chunk_max,
            hashpower: self.hashpower,
            lru_crawler: self.lru_crawler,
            lru_maintainer: self.lru_maintainer,
            slab_reassign: self.slab_reassign,
            slab_automove: self.slab_automove,
        }
    }
}
