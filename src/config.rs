//! Command-line configuration, memcached 1.6 compatible (`-p -l -U -m -c -t -I
//! -f -n -R -C -M -b -v -A -o ...`). [`parse_args`] turns argv into a
//! [`Config`] (or a help/version text to print), or a [`UsageError`] that the
//! binary reports on stderr with exit code 64, like memcached's usage errors.
//!
//! clap does the tokenising (short/long names, `-vv`, `-p11211`, `--port=1`);
//! values are validated here with memcached's own limits and messages so a
//! script that worked with memcached gets the same answer.

use crate::storage::StoreConfig;
use clap::{Arg, ArgAction, Command};

/// Exit code for usage errors (`EX_USAGE`, what memcached uses for most).
pub const EXIT_USAGE: i32 = 64;

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
    /// `-o worker_yield_us` (memcrab's own): a worker that has run this many
    /// microseconds without sleeping yields its CPU once; 0 = never.
    pub worker_yield_us: u64,
    /// `-o batch_send` / `no_batch_send` (memcrab's own): a worker sends the
    /// replies of one event-loop pass with one io_uring submission.
    pub batch_send: bool,
    /// `-o hugepages` / `no_hugepages` (memcrab's own): advise the slab
    /// arena for transparent huge pages.
    pub huge_pages: bool,
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
    /// `-d`: detach from the terminal.
    pub daemonize: bool,
    /// `-u`: user to switch to when started as root.
    pub user: Option<String>,
    /// `-P`: pid file (written with `-d`, like memcached).
    pub pidfile: Option<String>,
    /// `-r`: raise the core file limit.
    pub enable_coredumps: bool,
    /// `-k`: mlockall.
    pub lock_memory: bool,
    /// `-L`: accepted, no effect.
    pub large_pages: bool,
    /// `-D`: prefix delimiter for detailed stats (accepted, not used).
    pub prefix_delimiter: char,
    /// `-F`: `flush_all` answers an error.
    pub disable_flush_all: bool,
    /// `-X`: dumping commands disabled.
    pub disable_dumping: bool,
    /// `-W`: watch commands disabled.
    pub disable_watch: bool,
    /// `-S`: SASL (binary protocol); accepted, not supported.
    pub sasl: bool,
    /// `-e`: memory file (restartable cache); accepted, not supported.
    pub memory_file: Option<String>,
    /// `-N`: napi ids; accepted, no effect.
    pub napi_ids: u32,
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
            worker_yield_us: 200,
            batch_send: true,
            huge_pages: true,
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
            daemonize: false,
            user: None,
            pidfile: None,
            enable_coredumps: false,
            lock_memory: false,
            large_pages: false,
            prefix_delimiter: ':',
            disable_flush_all: false,
            disable_dumping: false,
            disable_watch: false,
            sasl: false,
            memory_file: None,
            napi_ids: 0,
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
            huge_pages: self.huge_pages,
        }
    }

    /// env_logger level for `-v` count (RUST_LOG still overrides).
    pub fn log_level(&self) -> log::LevelFilter {
        match self.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum CliAction {
    /// Start the server with this configuration.
    Run(Box<Config>),
    /// Print this text on stdout and exit 0 (`-h`, `-V`, `-i`).
    Print(String),
}

/// A refusal to start: the message goes to stderr, the exit code is 64.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// Every `-o` option memcached 1.6.18 (built with TLS and extstore) accepts.
/// The ones not handled in [`apply_extended`] are kept as unsupported.
const KNOWN_EXTENDED: &[&str] = &[
    "maxconns_fast",
    "no_maxconns_fast",
    "hashpower",
    "no_hashexpand",
    "slab_reassign",
    "no_slab_reassign",
    "slab_automove",
    "no_slab_automove",
    "slab_automove_ratio",
    "slab_automove_window",
    "slab_automove_freeratio",
    "tail_repair_time",
    "hash_algorithm",
    "lru_crawler",
    "no_lru_crawler",
    "lru_crawler_sleep",
    "lru_crawler_tocrawl",
    "lru_maintainer",
    "no_lru_maintainer",
    "hot_lru_pct",
    "warm_lru_pct",
    "hot_max_factor",
    "warm_max_factor",
    "temporary_ttl",
    "idle_timeout",
    "watcher_logbuf_size",
    "worker_logbuf_size",
    "slab_sizes",
    "slab_chunk_max",
    "track_sizes",
    "no_inline_ascii_resp",
    "inline_ascii_resp",
    "modern",
    "no_modern",
    "no_chunked_items",
    "no_drop_privileges",
    "drop_privileges",
    "resp_obj_mem_limit",
    "read_buf_mem_limit",
    "sock_cookie_id",
    "ext_path",
    "ext_wbuf_size",
    "ext_threads",
    "ext_io_depth",
    "ext_page_size",
    "ext_item_size",
    "ext_item_age",
    "ext_low_ttl",
    "ext_recache_rate",
    "ext_compact_under",
    "ext_drop_under",
    "ext_max_sleep",
    "ext_max_frag",
    "ext_drop_unread",
    "ssl_chain_cert",
    "ssl_key",
    "ssl_verify_mode",
    "ssl_keyformat",
    "ssl_ciphers",
    "ssl_ca_cert",
    "ssl_wbuf_size",
    "ssl_session_cache",
    "ssl_kernel_tls",
    "ssl_min_version",
];

/// The help text (`-h`), memcached's list with memcrab's notes.
pub fn help_text() -> String {
    format!(
        "memcrab {ver} (memcached-compatible)
-p, --port=<num>          TCP port to listen on (default: 11211)
-U, --udp-port=<num>      UDP port to listen on (default: 0, off)
-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)
-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: 700)
-A, --enable-shutdown     enable ascii \"shutdown\" command
-l, --listen=<addr>       interface(s) to listen on, comma separated, may carry :port
                          (default: all IPv4 and IPv6 interfaces)
-d, --daemon              run as a daemon
-r, --enable-coredumps    maximize core file limit
-u, --user=<user>         assume identity of <username> (only when run as root)
-m, --memory-limit=<num>  item memory in megabytes (default: 64)
-M, --disable-evictions   return error on memory exhausted instead of evicting
-c, --conn-limit=<num>    max simultaneous connections (default: 1024)
-k, --lock-memory         lock down all paged memory
-v, --verbose             verbose (print errors/warnings while in event loop)
-vv                       very verbose (also print client commands/responses)
-vvv                      extremely verbose (internal state transitions)
-h, --help                print this help and exit
-i, --license             print license and exit
-V, --version             print version and exit
-P, --pidfile=<file>      save PID in <file>, only used with -d option
-f, --slab-growth-factor=<num> chunk size growth factor (default: 1.25)
-n, --slab-min-size=<bytes> min space used for key+value+flags (default: 48)
-L, --enable-largepages   accepted; no effect
-D <char>                 prefix delimiter for detailed stats (accepted; no effect)
-t, --threads=<num>       number of worker threads (default: 4)
-R, --max-reqs-per-event  maximum number of requests per event (default: 20)
-C, --disable-cas         disable use of CAS
-b, --listen-backlog=<num> set the backlog queue limit (default: 1024)
-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: auto)
-I, --max-item-size=<num> adjusts max item size (default: 1m, min: 1k, max: 1024m)
-S, --enable-sasl         accepted; SASL is not supported
-F, --disable-flush-all   disable flush_all command
-X, --disable-dumping     disable stats cachedump and lru_crawler metadump
-W, --disable-watch       disable watch commands (live logging)
-e, --memory-file=<file>  accepted; restartable cache is not supported
-N, --napi_ids=<num>      accepted; no effect
    --resp-port=<num>     Redis RESP adapter port (default: 0, off)
-o, --extended            comma separated list of extended options
   implemented: idle_timeout, worker_yield_us, (no_)batch_send, (no_)hugepages (memcrab's: see README), hot_lru_pct, warm_lru_pct, temporary_ttl,
   slab_chunk_max, hashpower, (no_)lru_crawler, (no_)lru_maintainer,
   (no_)slab_reassign, slab_automove, (no_)maxconns_fast, modern, no_modern.
   Every other memcached 1.6 option is accepted and logged as not supported.
",
        ver = crate::VERSION
    )
}

fn cli() -> Command {
    let opt = |id: &'static str, short: char, long: &'static str| {
        Arg::new(id)
            .short(short)
            .long(long)
            .num_args(1)
            .allow_hyphen_values(true)
            .action(ArgAction::Set)
    };
    let flag = |id: &'static str, short: char, long: &'static str| {
        Arg::new(id)
            .short(short)
            .long(long)
            .action(ArgAction::SetTrue)
    };
    Command::new("memcrab")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .arg(opt("port", 'p', "port"))
        .arg(opt("udp-port", 'U', "udp-port"))
        .arg(opt("unix-socket", 's', "unix-socket"))
        .arg(opt("unix-mask", 'a', "unix-mask"))
        .arg(flag("enable-shutdown", 'A', "enable-shutdown"))
        .arg(
            opt("listen", 'l', "listen")
                .action(ArgAction::Append)
                .allow_hyphen_values(false),
        )
        .arg(flag("daemon", 'd', "daemon"))
        .arg(flag("enable-coredumps", 'r', "enable-coredumps"))
        .arg(opt("user", 'u', "user"))
        .arg(opt("memory-limit", 'm', "memory-limit"))
        .arg(flag("disable-evictions", 'M', "disable-evictions"))
        .arg(opt("conn-limit", 'c', "conn-limit"))
        .arg(flag("lock-memory", 'k', "lock-memory"))
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::Count),
        )
        .arg(flag("help", 'h', "help"))
        .arg(flag("license", 'i', "license"))
        .arg(flag("version", 'V', "version"))
        .arg(opt("pidfile", 'P', "pidfile"))
        .arg(opt("slab-growth-factor", 'f', "slab-growth-factor"))
        .arg(opt("slab-min-size", 'n', "slab-min-size"))
        .arg(flag("enable-largepages", 'L', "enable-largepages"))
        .arg(
            Arg::new("delimiter")
                .short('D')
                .num_args(1)
                .action(ArgAction::Set),
        )
        .arg(opt("threads", 't', "threads"))
        .arg(opt("max-reqs-per-event", 'R', "max-reqs-per-event"))
        .arg(flag("disable-cas", 'C', "disable-cas"))
        .arg(opt("listen-backlog", 'b', "listen-backlog"))
        .arg(opt("protocol", 'B', "protocol"))
        .arg(opt("max-item-size", 'I', "max-item-size"))
        .arg(flag("enable-sasl", 'S', "enable-sasl"))
        .arg(flag("disable-flush-all", 'F', "disable-flush-all"))
        .arg(flag("disable-dumping", 'X', "disable-dumping"))
        .arg(flag("disable-watch", 'W', "disable-watch"))
        .arg(opt("auth-file", 'Y', "auth-file"))
        .arg(opt("memory-file", 'e', "memory-file"))
        .arg(flag("enable-ssl", 'Z', "enable-ssl"))
        .arg(opt("napi_ids", 'N', "napi_ids"))
        .arg(
            opt("extended", 'o', "extended")
                .action(ArgAction::Append)
                .allow_hyphen_values(false),
        )
        .arg(
            Arg::new("resp-port")
                .long("resp-port")
                .num_args(1)
                .action(ArgAction::Set),
        )
        // memcached ignores stray non-option words; so do we.
        .arg(
            Arg::new("extra")
                .num_args(0..)
                .action(ArgAction::Append)
                .hide(true),
        )
}

/// Parses an unsigned decimal number; `what` names it in the error.
fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, UsageError> {
    s.trim()
        .parse::<T>()
        .or_else(|_| err(format!("Invalid value for {what}: \"{s}\"")))
}

/// A size with an optional k/m/g suffix (binary units), as `-I` takes it.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1u64 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

fn port(s: &str, what: &str) -> Result<u16, UsageError> {
    match s.trim().parse::<i64>() {
        Ok(p) if (0..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => err(format!("ERROR: Invalid port number {p}.")),
        Err(_) => err(format!("Invalid value for {what}: \"{s}\"")),
    }
}

/// Parses argv (including the program name in position 0).
pub fn parse_args<I, S>(args: I) -> Result<CliAction, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let m = match cli().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            // clap's own rendering names the bad flag; drop its usage footer
            // and point at -h instead.
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            return err(format!("{first} (see -h)"));
        }
    };
    if m.get_flag("help") {
        return Ok(CliAction::Print(help_text()));
    }
    if m.get_flag("version") {
        return Ok(CliAction::Print(format!(
            "memcrab {} (memcrab {})\n",
            crate::VERSION,
            env!("CARGO_PKG_VERSION")
        )));
    }
    if m.get_flag("license") {
        return Ok(CliAction::Print(
            "memcrab is distributed under the MIT license.\n".into(),
        ));
    }
    let s = |id: &str| m.get_one::<String>(id).map(|v| v.as_str());
    let mut c = Config::default();

    if let Some(v) = s("port") {
        c.port = port(v, "-p")?;
    }
    if let Some(v) = s("udp-port") {
        c.udp_port = port(v, "-U")?;
    }
    if let Some(v) = s("resp-port") {
        c.resp_port = port(v, "--resp-port")?;
    }
    c.unix_socket = s("unix-socket").map(String::from);
    if let Some(v) = s("unix-mask") {
        c.unix_mask = u32::from_str_radix(v.trim(), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .map_or_else(|| err(format!("Invalid value for -a: \"{v}\"")), Ok)?;
    }
    c.enable_shutdown = m.get_flag("enable-shutdown");
    if let Some(vals) = m.get_many::<String>("listen") {
        for v in vals {
            for a in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                c.listen.push(a.to_string());
            }
        }
    }
    c.daemonize = m.get_flag("daemon");
    c.enable_coredumps = m.get_flag("enable-coredumps");
    c.user = s("user").map(String::from);
    if let Some(v) = s("memory-limit") {
        // memcached reads -m with atoi (so "64m" is 64); k/m/g on a number
        // also work here, in megabytes when no unit is given.
        let t = v.trim();
        let mb = match t.as_bytes().last() {
            Some(b'k' | b'K' | b'g' | b'G') => parse_size(t).map(|b| b >> 20),
            Some(b'm' | b'M') => t[..t.len() - 1].parse::<u64>().ok(),
            _ => t.parse::<u64>().ok(),
        };
        c.memory_limit_mb = mb
            .filter(|mb| *mb < 1 << 40)
            .ok_or_else(|| UsageError(format!("Invalid value for -m: \"{v}\"")))?;
    }
    c.evict_to_free = !m.get_flag("disable-evictions");
    if let Some(v) = s("conn-limit") {
        let n: i64 = num(v, "-c")?;
        if n <= 0 {
            return err("Maximum connections must be greater than 0");
        }
        c.conn_limit = n as usize;
    }
    c.lock_memory = m.get_flag("lock-memory");
    c.verbose = m.get_count("verbose");
    c.pidfile = s("pidfile").map(String::from);
    if let Some(v) = s("slab-growth-factor") {
        let f: f64 = num(v, "-f")?;
        if f.is_nan() || f <= 1.0 {
            return err("Factor must be greater than 1");
        }
        c.growth_factor = f;
    }
    if let Some(v) = s("slab-min-size") {
        let n: i64 = num(v, "-n")?;
        if n <= 0 {
            return err("Chunk size must be greater than 0");
        }
        c.chunk_min = n as usize;
    }
    c.large_pages = m.get_flag("enable-largepages");
    if let Some(v) = s("delimiter") {
        c.prefix_delimiter = v.chars().next().unwrap_or(':');
    }
    if let Some(v) = s("threads") {
        let n: i64 = num(v, "-t").or_else(|_| err("Number of threads must be greater than 0"))?;
        if n <= 0 {
            return err("Number of threads must be greater than 0");
        }
        if n > 1024 {
            return err("Number of threads must be at most 1024");
        }
        c.threads = n as usize;
    }
    if let Some(v) = s("max-reqs-per-event") {
        let n: i64 = num(v, "-R")?;
        if n <= 0 {
            return err("Number of requests per event must be greater than 0");
        }
        c.reqs_per_event = n as usize;
    }
    c.use_cas = !m.get_flag("disable-cas");
    if let Some(v) = s("listen-backlog") {
        c.backlog = num(v, "-b")?;
    }
    if let Some(v) = s("protocol") {
        match v {
            "auto" | "binary" | "ascii" => c.protocol = v.to_string(),
            _ => {
                return err(format!(
                    "Invalid value for binding protocol: {v}\n -- should be one of auto, binary, or ascii"
                ))
            }
        }
    }
    if let Some(v) = s("max-item-size") {
        let n = parse_size(v).unwrap_or(0);
        if n < 1024 {
            return err("Item max size cannot be less than 1024 bytes.");
        }
        if n > 1 << 30 {
            return err("Cannot set item size limit higher than 1 GB.");
        }
        c.item_size_max = n as usize;
    }
    c.sasl = m.get_flag("enable-sasl");
    c.disable_flush_all = m.get_flag("disable-flush-all");
    c.disable_dumping = m.get_flag("disable-dumping");
    c.disable_watch = m.get_flag("disable-watch");
    if s("auth-file").is_some() {
        // Ignoring -Y would silently serve an open cache to anyone.
        return err("-Y (ASCII authentication) is not supported by memcrab");
    }
    if m.get_flag("enable-ssl") {
        return err("-Z (TLS) is not supported by memcrab");
    }
    c.memory_file = s("memory-file").map(String::from);
    if let Some(v) = s("napi_ids") {
        c.napi_ids = num(v, "-N")?;
    }

    let mut slab_chunk_changed = false;
    if let Some(vals) = m.get_many::<String>("extended") {
        for v in vals {
            for opt in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                apply_extended(&mut c, opt, &mut slab_chunk_changed)?;
            }
        }
    }
    validate(&c)?;
    Ok(CliAction::Run(Box::new(c)))
}

/// Applies one `-o name[=value]` option.
fn apply_extended(c: &mut Config, opt: &str, chunk_changed: &mut bool) -> Result<(), UsageError> {
    let (name, value) = match opt.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (opt, None),
    };
    let need = |what: &str| -> Result<&str, UsageError> {
        match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => err(format!("Missing numeric argument for {what}")),
        }
    };
    let numeric = |what: &str| -> Result<u64, UsageError> {
        let v = need(what)?;
        v.trim()
            .parse::<u64>()
            .or_else(|_| err(format!("Invalid numeric argument for {what}: \"{v}\"")))
    };
    match name {
        "idle_timeout" => c.idle_timeout = numeric(name)?,
        "worker_yield_us" => c.worker_yield_us = numeric(name)?,
        "batch_send" => c.batch_send = true,
        "no_batch_send" => c.batch_send = false,
        "hugepages" => c.huge_pages = true,
        "no_hugepages" => c.huge_pages = false,
        "hot_lru_pct" => {
            let p = numeric(name)?;
            if !(1..80).contains(&p) {
                return err("hot_lru_pct must be > 1 and < 80");
            }
            c.hot_lru_pct = p as u32;
        }
        "warm_lru_pct" => {
            let p = numeric(name)?;
            if !(1..80).contains(&p) {
                return err("warm_lru_pct must be > 1 and < 80");
            }
            c.warm_lru_pct = p as u32;
        }
        "temporary_ttl" => c.temporary_ttl = numeric(name)?.min(u32::MAX as u64) as u32,
        "slab_chunk_max" => {
            let v = need(name)?;
            let n = parse_size(v).ok_or_else(|| {
                UsageError(format!("Invalid numeric argument for {name}: \"{v}\""))
            })?;
            if n == 0 {
                return err("slab_chunk_max must be greater than 0");
            }
            c.slab_chunk_max = n as usize;
            *chunk_changed = true;
        }
        "hashpower" => {
            let n = numeric(name)?;
            if n < 12 {
                return err(format!("Initial hashtable multiplier of {n} is too low"));
            }
            if n > 32 {
                return err(format!(
                    "Initial hashtable multiplier of {n} is too high\nChoose a value based on \"STAT hash_power_level\" from a running instance"
                ));
            }
            c.hashpower = n as u32;
        }
        "lru_crawler" => c.lru_crawler = true,
        "no_lru_crawler" => c.lru_crawler = false,
        "lru_maintainer" => c.lru_maintainer = true,
        "no_lru_maintainer" => c.lru_maintainer = false,
        "slab_reassign" => c.slab_reassign = true,
        "no_slab_reassign" => c.slab_reassign = false,
        "slab_automove" => {
            let n = match value {
                None | Some("") => 1,
                Some(_) => numeric(name)?,
            };
            if n > 2 {
                return err("slab_automove must be between 0 and 2");
            }
            c.slab_automove = n as u32;
        }
        "no_slab_automove" => c.slab_automove = 0,
        "maxconns_fast" => c.maxconns_fast = true,
        "no_maxconns_fast" => c.maxconns_fast = false,
        "modern" => {
            c.slab_reassign = true;
            c.slab_automove = 1;
            c.maxconns_fast = true;
            c.lru_crawler = true;
            c.lru_maintainer = true;
        }
        "no_modern" => {
            // memcached 1.4-era defaults.
            if !*chunk_changed {
                c.slab_chunk_max = 1 << 20;
            }
            c.slab_reassign = false;
            c.slab_automove = 0;
            c.maxconns_fast = false;
            c.lru_crawler = false;
            c.lru_maintainer = false;
        }
        _ if KNOWN_EXTENDED.contains(&name) => c.unsupported_options.push(opt.to_string()),
        _ => return err(format!("Illegal suboption \"{opt}\"")),
    }
    Ok(())
}

/// Cross-option checks, in memcached's order and words.
fn validate(c: &Config) -> Result<(), UsageError> {
    if c.hot_lru_pct + c.warm_lru_pct > 80 {
        return err("hot_lru_pct + warm_lru_pct cannot be more than 80% combined");
    }
    let maxbytes = c.memory_limit_mb.saturating_mul(1 << 20);
    if c.item_size_max as u64 > maxbytes / 2 {
        return err("Cannot set item size limit higher than 1/2 of memory max.");
    }
    if c.slab_chunk_max > c.item_size_max {
        return err(format!(
            "slab_chunk_max (bytes: {}) cannot be larger than -I (item_size_max {})",
            c.slab_chunk_max, c.item_size_max
        ));
    }
    if !c.item_size_max.is_multiple_of(c.slab_chunk_max) {
        return err(format!(
            "-I (item_size_max: {}) must be evenly divisible by slab_chunk_max (bytes: {})",
            c.item_size_max, c.slab_chunk_max
        ));
    }
    if c.unix_socket.is_some() && c.unix_socket.as_deref() == Some("") {
        return err("-s needs a path");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, UsageError> {
        let mut v = vec!["memcrab"];
        v.extend_from_slice(args);
        match parse_args(v)? {
            CliAction::Run(c) => Ok(*c),
            CliAction::Print(t) => panic!("unexpected print: {t}"),
        }
    }

    fn refused(args: &[&str]) -> String {
        run(args).expect_err("should refuse").0
    }

    #[test]
    fn defaults_match_memcached() {
        let c = run(&[]).unwrap();
        assert_eq!(c.port, 11211);
        assert_eq!(c.udp_port, 0);
        assert_eq!(c.memory_limit_mb, 64);
        assert_eq!(c.conn_limit, 1024);
        assert_eq!(c.threads, 4);
        assert_eq!(c.item_size_max, 1 << 20);
        assert_eq!(c.growth_factor, 1.25);
        assert_eq!(c.chunk_min, 48);
        assert_eq!(c.reqs_per_event, 20);
        assert_eq!(c.backlog, 1024);
        assert!(c.use_cas && c.evict_to_free && c.maxconns_fast);
        assert!(!c.enable_shutdown);
        assert_eq!(c.protocol, "auto");
        assert_eq!(c.unix_mask, 0o700);
    }

    #[test]
    fn short_and_long_flags() {
        let c = run(&[
            "-p",
            "1234",
            "-U",
            "0",
            "-l",
            "127.0.0.1,::1",
            "-l",
            "10.0.0.1:99",
            "-m",
            "128",
            "-c",
            "10",
            "-t",
            "2",
            "-I",
            "2m",
            "-f",
            "1.5",
            "-n",
            "64",
            "-R",
            "5",
            "-C",
            "-M",
            "-b",
            "50",
            "-vv",
            "-A",
            "-B",
            "ascii",
            "-s",
            "/tmp/x.sock",
            "-a",
            "755",
        ])
        .unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.listen, vec!["127.0.0.1", "::1", "10.0.0.1:99"]);
        assert_eq!(c.memory_limit_mb, 128);
        assert_eq!(c.conn_limit, 10);
        assert_eq!(c.threads, 2);
        assert_eq!(c.item_size_max, 2 << 20);
        assert_eq!(c.growth_factor, 1.5);
        assert_eq!(c.chunk_min, 64);
        assert_eq!(c.reqs_per_event, 5);
        assert!(!c.use_cas && !c.evict_to_free);
        assert_eq!(c.backlog, 50);
        assert_eq!(c.verbose, 2);
        assert_eq!(c.log_level(), log::LevelFilter::Debug);
        assert!(c.enable_shutdown);
        assert_eq!(c.protocol, "ascii");
        assert_eq!(c.unix_socket.as_deref(), Some("/tmp/x.sock"));
        assert_eq!(c.unix_mask, 0o755);
        let c = run(&[
            "--port=99",
            "--threads",
            "3",
            "--max-item-size=512k",
            "-vvv",
            "-p11",
        ])
        .unwrap();
        assert_eq!(c.port, 11, "last -p wins");
        assert_eq!(c.threads, 3);
        assert_eq!(c.item_size_max, 512 << 10);
        assert_eq!(c.verbose, 3);
    }

    #[test]
    fn accepted_without_effect() {
        let c = run(&[
            "-d",
            "-u",
            "nobody",
            "-r",
            "-P",
            "/tmp/p",
            "-L",
            "-D",
            ":",
            "-k",
            "-S",
            "-F",
            "-X",
            "-W",
            "-e",
            "/tmp/m",
            "-N",
            "2",
            "--resp-port",
            "6379",
            "stray",
        ])
        .unwrap();
        assert!(c.daemonize && c.enable_coredumps && c.lock_memory && c.disable_flush_all);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.resp_port, 6379);
    }

    #[test]
    fn extended_options() {
        let c = run(&[
            "-o",
            "idle_timeout=5,hot_lru_pct=30,warm_lru_pct=30,temporary_ttl=10",
            "-o",
            "hashpower=20,no_lru_crawler,no_lru_maintainer,no_maxconns_fast,slab_automove=2",
            "-o",
            "ext_path=/tmp/x:1G,hash_algorithm=xxh3,track_sizes,slab_chunk_max=256k",
        ])
        .unwrap();
        assert_eq!(c.idle_timeout, 5);
        assert_eq!(c.worker_yield_us, 200, "default");
        assert_eq!(
            run(&["-o", "worker_yield_us=0"]).unwrap().worker_yield_us,
            0
        );
        assert!(refused(&["-o", "worker_yield_us=x"]).contains("worker_yield_us"));
        assert!(c.batch_send, "default");
        assert!(!run(&["-o", "no_batch_send"]).unwrap().batch_send);
        assert!(run(&["-o", "no_batch_send,batch_send"]).unwrap().batch_send);
        assert!(c.huge_pages, "default");
        assert!(!run(&["-o", "no_hugepages"]).unwrap().huge_pages);
        assert_eq!(
            (c.hot_lru_pct, c.warm_lru_pct, c.temporary_ttl),
            (30, 30, 10)
        );
        assert_eq!(c.hashpower, 20);
        assert!(!c.lru_crawler && !c.lru_maintainer && !c.maxconns_fast);
        assert_eq!(c.slab_automove, 2);
        assert_eq!(c.slab_chunk_max, 256 << 10);
        assert_eq!(
            c.unsupported_options,
            vec!["ext_path=/tmp/x:1G", "hash_algorithm=xxh3", "track_sizes"]
        );
        let c = run(&["-o", "no_modern"]).unwrap();
        assert!(!c.slab_reassign && c.slab_automove == 0 && !c.maxconns_fast);
        assert_eq!(c.slab_chunk_max, 1 << 20);
        let c = run(&["-o", "modern"]).unwrap();
        assert!(c.slab_reassign && c.maxconns_fast);
    }

    #[test]
    fn refusals_match_memcached() {
        assert_eq!(
            refused(&["-t", "0"]),
            "Number of threads must be greater than 0"
        );
        assert_eq!(
            refused(&["-t", "abc"]),
            "Number of threads must be greater than 0"
        );
        assert_eq!(
            refused(&["-I", "1000"]),
            "Item max size cannot be less than 1024 bytes."
        );
        assert_eq!(
            refused(&["-I", "3x"]),
            "Item max size cannot be less than 1024 bytes."
        );
        assert_eq!(
            refused(&["-I", "33m"]),
            "Cannot set item size limit higher than 1/2 of memory max."
        );
        assert_eq!(
            refused(&["-I", "2g", "-m", "8192"]),
            "Cannot set item size limit higher than 1 GB."
        );
        assert!(refused(&["-I", "100k"]).starts_with("slab_chunk_max (bytes: 524288) cannot"));
        assert!(refused(&["-I", "513k"]).contains("must be evenly divisible"));
        assert!(refused(&["-B", "http"]).starts_with("Invalid value for binding protocol: http"));
        assert_eq!(
            refused(&["-c", "0"]),
            "Maximum connections must be greater than 0"
        );
        assert_eq!(refused(&["-f", "1.0"]), "Factor must be greater than 1");
        assert_eq!(refused(&["-n", "0"]), "Chunk size must be greater than 0");
        assert_eq!(
            refused(&["-R", "0"]),
            "Number of requests per event must be greater than 0"
        );
        assert_eq!(
            refused(&["-p", "70000"]),
            "ERROR: Invalid port number 70000."
        );
        assert!(refused(&["-p", "abc"]).contains("-p"));
        assert!(refused(&["-m", "abc"]).contains("-m"));
        assert!(refused(&["-m", "99999999999999999"]).contains("-m"));
        assert_eq!(refused(&["-o", "bogus"]), "Illegal suboption \"bogus\"");
        assert_eq!(
            refused(&["-o", "idle_timeout"]),
            "Missing numeric argument for idle_timeout"
        );
        assert!(refused(&["-o", "idle_timeout=abc"]).contains("idle_timeout"));
        assert_eq!(
            refused(&["-o", "hot_lru_pct=90"]),
            "hot_lru_pct must be > 1 and < 80"
        );
        assert!(refused(&["-o", "hot_lru_pct=50,warm_lru_pct=50"]).contains("80%"));
        assert!(refused(&["-o", "hashpower=5"]).contains("too low"));
        assert!(refused(&["-o", "hashpower=70"]).contains("too high"));
        assert!(refused(&["-o", "slab_chunk_max=0"]).contains("slab_chunk_max"));
        assert!(refused(&["--bogus"]).contains("--bogus"));
        assert!(refused(&["-Q"]).contains("-Q"));
        assert!(refused(&["-p"]).contains("-p"));
        assert!(refused(&["-Z"]).contains("TLS"));
        assert!(refused(&["-Y", "/tmp/auth"]).contains("authentication"));
        assert!(refused(&["-a", "999"]).contains("-a"));
    }

    #[test]
    fn help_and_version_print() {
        match parse_args(["memcrab", "-V"]).unwrap() {
            CliAction::Print(t) => assert!(t.contains("1.6.")),
            _ => panic!("-V should print"),
        }
        match parse_args(["memcrab", "-h"]).unwrap() {
            CliAction::Print(t) => assert!(t.contains("-p, --port")),
            _ => panic!("-h should print"),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }
}
