//! Command-line options of the load generator.

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// `get k1 k2 …` / `set k 0 0 len`
    Text,
    /// `mg k v` / `ms k len T0`
    Meta,
}

/// Operation of `--bulk` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BulkOp {
    /// Batches of quiet sets closed by `mn` (meta `ms k len q`, text `set … noreply`).
    Set,
    /// Batches of gets (meta `mg k v` lines, text one `get k1 … kN`); all must hit.
    Get,
    /// Batches of quiet increments closed by `mn` (meta `ma k q`, text `incr k
    /// 1 noreply`). The preload writes "0" to every key (-v is ignored), so
    /// every increment must succeed silently.
    Incr,
}

/// memcrab-bench: a closed-loop, pipelining load generator for memcached-
/// compatible servers. Every reply is parsed and checked (VALUE/END/STORED,
/// VA/EN/HD); a reply it cannot account for ends that connection and is
/// reported as `proto_errors`.
#[derive(Parser, Debug, Clone)]
#[command(name = "memcrab-bench", version)]
pub struct Args {
    /// Server address (host:port).
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    pub server: String,
    /// Load connections (each keeps `--depth` requests in flight).
    #[arg(short = 'c', long, default_value_t = 50)]
    pub conns: usize,
    /// Generator threads, each with its own mio event loop.
    #[arg(short = 't', long, default_value_t = 2)]
    pub threads: usize,
    /// Pipelining depth: requests in flight per connection.
    #[arg(short = 'd', long, default_value_t = 1)]
    pub depth: usize,
    /// Fraction of requests that are gets (0.0..=1.0); the rest are sets.
    #[arg(short = 'g', long, default_value_t = 0.9)]
    pub get_ratio: f64,
    /// Keys per get request (text: one `get` with K keys; meta: K `mg` lines).
    #[arg(short = 'k', long, default_value_t = 1)]
    pub mget: usize,
    /// Wire protocol.
    #[arg(short = 'P', long, value_enum, default_value_t = Protocol::Text)]
    pub protocol: Protocol,
    /// Key space size.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub keys: u64,
    /// Key distribution: `uniform` or `zipf:S` (e.g. zipf:0.99).
    #[arg(long, default_value = "uniform")]
    pub dist: String,
    /// Value size in bytes.
    #[arg(short = 'v', long, default_value_t = 100)]
    pub value_size: usize,
    /// Key prefix (keys are PREFIX + zero-padded index, all the same length).
    #[arg(long, default_value = "mb:")]
    pub key_prefix: String,
    /// Extra connections that only connect (and answer one `version`), then sit idle.
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Measured duration in seconds.
    #[arg(short = 'D', long, default_value_t = 5.0)]
    pub duration: f64,
    /// Warm-up seconds before measuring (load runs, nothing is recorded).
    #[arg(short = 'w', long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop measuring after this many requests (a safety cap).
    #[arg(long, default_value_t = 50_000_000)]
    pub max_ops: u64,
    /// Set every key once (pipelined) before the run.
    #[arg(long)]
    pub preload: bool,
    /// Only preload, then exit.
    #[arg(long)]
    pub preload_only: bool,
    /// Server PID: sample its utime+stime over the measured window (CPU per op).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Skip comparing returned value bytes (lengths and framing are still checked).
    #[arg(long)]
    pub no_verify_data: bool,
    /// Bulk mode: send pre-rendered batches of `--batch` requests (every key
    /// once, shuffled) straight from static buffers and compare each batch's
    /// reply byte for byte with the expected one (`MN` for quiet sets; every
    /// value for gets, so the keys must be loaded: --preload). The cheapest
    /// load per request this tool can make, for CPU-bound server measurements
    /// (scaling). Ignores -g, -k and --dist; -d counts batches in flight (with
    /// -d N a connection only wakes once N-1 replies can be complete:
    /// SO_RCVLOWAT); requests are counted as ops, latency is per batch. Any
    /// other reply byte (a miss, an error line) is a protocol error that ends
    /// the connection.
    #[arg(long, value_enum)]
    pub bulk: Option<BulkOp>,
    /// Send the requests of every connection served in one event-loop pass
    /// with one io_uring submission (as memcrab's workers do) instead of one
    /// `write` each: less generator CPU per request on shared cores. Falls
    /// back to writes where io_uring is unavailable.
    #[arg(long)]
    pub batch_send: bool,
    /// Requests per batch in --bulk mode.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// RNG seed (each connection derives its own stream).
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Label echoed in the RESULT line.
    #[arg(long, default_value = "run")]
    pub label: String,
}

/// Key distribution parsed from `--dist`.
#[derive(Clone, Copy, Debug)]
pub enum Dist {
    Uniform,
    Zipf(f64),
}

impl Args {
    pub fn dist(&self) -> Result<Dist, String> {
        if self.dist == "uniform" {
            return Ok(Dist::Uniform);
        }
        if let Some(s) = self.dist.strip_prefix("zipf:") {
            let s: f64 = s.parse().map_err(|_| format!("bad zipf exponent {s:?}"))?;
            if !(s > 0.0 && s < 10.0) {
                return Err(format!("zipf exponent {s} out of range (0, 10)"));
            }
            return Ok(Dist::Zipf(s));
        }
        if self.dist == "zipf" {
            return Ok(Dist::Zipf(0.99));
        }
        Err(format!("unknown distribution {:?}", self.dist))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.conns == 0 || self.threads == 0 || self.depth == 0 || self.mget == 0 {
            return Err("--conns, --threads, --depth and --mget must be >= 1".into());
        }
        if self.batch == 0 {
            return Err("--batch must be >= 1".into());
        }
        if self.bulk.is_some() {
            // The pool holds every key's request (and, for gets, its reply).
            let per_key = 2 * (self.key_prefix.len() + digits(self.keys) + self.value_size + 40);
            if (self.keys as u128) * per_key as u128 > 2 << 30 {
                return Err("--bulk would pre-render more than 2 GiB: fewer --keys".into());
            }
        }
        if self.keys == 0 || self.keys > u32::MAX as u64 {
            return Err("--keys must be in 1..=4294967295".into());
        }
        if !(0.0..=1.0).contains(&self.get_ratio) {
            return Err("--get-ratio must be within 0..=1".into());
        }
        if self.duration <= 0.0 || self.warmup < 0.0 {
            return Err("--duration must be > 0 and --warmup >= 0".into());
        }
        if self.key_prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("--key-prefix must not contain spaces or control characters".into());
        }
        let key_len = self.key_prefix.len() + digits(self.keys - 1);
        if key_len > 250 {
            return Err("keys would exceed 250 bytes".into());
        }
        self.dist()?;
        Ok(())
    }
}

/// Decimal digits needed for `n` (at least 1).
pub fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}
