//! Robustness of the request path against hostile input.
//!
//! Property tests (proptest) drive `protocol::process` directly with random
//! bytes, mutated valid pipelines and random read splits, checking that it
//! never panics, never claims more bytes than it was given, frames the same
//! way however the bytes arrive, and keeps each call's output within
//! `out_limit` plus one reply. Socket tests then throw garbage at a real
//! server and check it (and, where memcached keeps it, the same connection)
//! still answers. `MEMCRAB_TEST_SERVER=memcached` runs the socket tests
//! against memcached to check their expectations.

use memcrab::command::{Ctx, Shared};
use memcrab::config::Config;
use memcrab::protocol::{process, Session};
use memcrab::stats::WorkerStats;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// In-process driver

/// One connection against a fresh store, fed like a socket would be.
struct Driver {
    shared: Shared,
    stats: WorkerStats,
    session: Session,
    pending: Vec<u8>,
    out_limit: usize,
    closed: bool,
    /// Largest output of one `process` call.
    max_call_out: usize,
}

impl Driver {
    fn new(item_size_max: usize, out_limit: usize, max_requests: usize) -> Driver {
        let config = Config {
            item_size_max,
            memory_limit_mb: 8,
            // No background threads: the replies must depend on the input only.
            lru_maintainer: false,
            lru_crawler: false,
            ..Config::default()
        };
        Driver {
            shared: Shared::new(config),
            stats: WorkerStats::default(),
            session: Session {
                max_requests,
                ..Session::default()
            },
            pending: Vec::new(),
            out_limit,
            closed: false,
            max_call_out: 0,
        }
    }

    /// Appends `bytes` to the connection's input and processes it the way
    /// the server does (again while `process` yields). Returns the replies.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        self.pending.extend_from_slice(bytes);
        let ctx = Ctx {
            shared: &self.shared,
            stats: &self.stats,
        };
        loop {
            let before = out.len();
            let p = process(
                &mut self.session,
                &self.pending,
                &mut out,
                &ctx,
                self.out_limit,
            );
            assert!(
                p.consumed <= self.pending.len(),
                "consumed {} of {} bytes",
                p.consumed,
                self.pending.len()
            );
            self.max_call_out = self.max_call_out.max(out.len() - before);
            self.pending.drain(..p.consumed);
            if p.close {
                self.closed = true;
                self.pending.clear();
                break;
            }
            if !p.yielded {
                break;
            }
            // A yield must make progress, or the server would spin (a
            // paused multi-get consumes nothing but writes replies).
            assert!(
                p.consumed > 0 || out.len() > before,
                "yielded without progress"
            );
        }
        out
    }
}

/// Feeds `input` to a fresh driver in pieces ending at `cuts` (sorted,
/// deduplicated positions inside the input); returns (replies, closed).
fn run_split(
    input: &[u8],
    cuts: &[usize],
    item_size_max: usize,
    out_limit: usize,
    max_requests: usize,
) -> (Vec<u8>, bool, usize) {
    let mut d = Driver::new(item_size_max, out_limit, max_requests);
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        let c = c.clamp(start, input.len());
        out.extend_from_slice(&d.feed(&input[start..c]));
        start = c;
    }
    (out, d.closed, d.max_call_out)
}

/// Replies with what legitimately differs between two runs masked: `stats`
/// lines (uptime, rusage, pointers), cachedump exptimes and the
/// time-derived meta fields.
fn normalize(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut lines = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with("STAT ") {
            continue;
        }
        if let Some(semi) = line.strip_prefix("ITEM ").and_then(|l| l.rfind(';')) {
            // cachedump's exptime is absolute: the clock may tick between runs.
            lines.push(line[..semi + 5].to_string());
            continue;
        }
        if line.starts_with("ME ") {
            lines.push("ME <masked>".to_string());
            continue;
        }
        let meta_reply = ["VA ", "HD", "EN", "NS", "EX", "NF"]
            .iter()
            .any(|p| line.starts_with(p));
        if meta_reply {
            let masked: Vec<String> = line
                .split(' ')
                .map(|t| {
                    if t.len() > 1 && (t.starts_with('t') || t.starts_with('l')) {
                        format!("{}<n>", &t[..1])
                    } else {
                        t.to_string()
                    }
                })
                .collect();
            lines.push(masked.join(" "));
        } else {
            lines.push(line.to_string());
        }
    }
    lines.join("\r\n")
}

/// Cut positions for `len` bytes from raw random numbers.
fn cuts_for(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|r| r % (len + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The properties every stream must satisfy: no panic (the test would
/// fail), consumed bytes within bounds (checked in `feed`), identical replies
/// whole vs split, and identical replies under a tight `out_limit` whose
/// calls each stay within the limit plus the largest single reply.
fn check_stream(input: &[u8], raw_cuts: &[usize], item_size_max: usize, out_limit: usize) {
    let (whole, closed_whole, _) = run_split(input, &[], item_size_max, 1 << 30, 0);
    let cuts = cuts_for(input.len(), raw_cuts);
    let (split, closed_split, _) = run_split(input, &cuts, item_size_max, 1 << 30, 0);
    assert_eq!(
        normalize(&whole),
        normalize(&split),
        "split at {cuts:?} changed the replies to {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(closed_whole, closed_split, "close differs when split");

    // One request per call: the largest single reply.
    let (one_by_one, _, max_reply) = run_split(input, &[], item_size_max, 1 << 30, 1);
    assert_eq!(normalize(&whole), normalize(&one_by_one));
    let (limited, _, max_call) = run_split(input, &cuts, item_size_max, out_limit, 0);
    assert_eq!(
        normalize(&whole),
        normalize(&limited),
        "out_limit {out_limit} changed the replies"
    );
    // Slack for stats lines whose numbers may grow a digit between runs.
    assert!(
        max_call <= out_limit + max_reply + 256,
        "one call wrote {max_call} bytes with out_limit {out_limit}, largest reply {max_reply}"
    );
}

// ---------------------------------------------------------------------------
// Generators

/// Bytes that steer a random stream into the parsers' interesting corners.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        3 => prop::sample::select(b" \r\n\0".to_vec()),
        3 => prop::sample::select(b"0123456789-+".to_vec()),
        2 => prop::sample::select(b"mgsetadkvqTNFCMDIJOb=".to_vec()),
    ]
}

/// Tokens that random streams are glued from: command names of both
/// protocols, keys, numbers at the edges of their types, flags.
const WORDS: &[&str] = &[
    "get",
    "gets",
    "gat",
    "gats",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "incr",
    "decr",
    "delete",
    "touch",
    "flush_all",
    "version",
    "verbosity",
    "quit",
    "stats",
    "slabs",
    "lru_crawler",
    "cache_memlimit",
    "shutdown",
    "mg",
    "ms",
    "md",
    "ma",
    "mn",
    "me",
    "k",
    "key",
    "0",
    "1",
    "2",
    "10",
    "-1",
    "100000",
    "noreply",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "2147483647",
    "2147483648",
    "-2147483649",
    "v",
    "q",
    "k",
    "t",
    "c",
    "s",
    "f",
    "O123",
    "T0",
    "T-1",
    "N0",
    "C1",
    "C0",
    "F5",
    "MS",
    "ME",
    "MA",
    "MP",
    "MR",
    "MI",
    "MD",
    "M+",
    "Mx",
    "D1",
    "J5",
    "I",
    "b",
    "a2V5",
    "====",
    "x",
    "\0",
    "\x7f",
    "\u{ff}",
    "HTTP/1.1",
    "detail",
    "on",
    "dump",
    "items",
    "slabs",
    "sizes",
    "cachedump",
    "reassign",
    "automove",
];

fn word_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => prop::sample::select(WORDS).prop_map(|w| w.as_bytes().to_vec()),
        2 => Just(b" ".to_vec()),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => prop::collection::vec(interesting_byte(), 1..8),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

/// A key from a small set, so commands meet each other's items.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "counter", "k:1", "k:2"]).prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"1".to_vec()),
        Just(b"42".to_vec()),
        prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn exptime() -> impl Strategy<Value = i64> {
    // 0, already expired, or far enough away that no run sees it expire.
    prop::sample::select(vec![0i64, -1, 100_000])
}

/// One well-formed request of the text or meta protocol.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let nr = || prop::bool::weighted(0.2).prop_map(|b| if b { " noreply" } else { "" });
    let meta_flags = prop::collection::vec(
        prop::sample::select(vec![
            "v", "k", "c", "f", "s", "t", "q", "O42", "T0", "N100000", "F7", "C1", "I", "MA", "MP",
            "MR", "ME", "MS", "M+", "M-", "D3", "J9", "h", "l", "u", "x",
        ]),
        0..5,
    )
    .prop_map(|mut f| {
        f.sort_unstable();
        f.dedup_by(|a, b| a.as_bytes()[0] == b.as_bytes()[0]);
        f.iter().map(|s| format!(" {s}")).collect::<String>()
    });
    prop_oneof![
        (
            prop::sample::select(vec!["set", "add", "replace", "append", "prepend"]),
            key(),
            any::<u32>(),
            exptime(),
            value(),
            nr()
        )
            .prop_map(|(c, k, f, e, v, nr)| {
                let mut r = format!("{c} {k} {f} {e} {}{nr}\r\n", v.len()).into_bytes();
                r.extend_from_slice(&v);
                r.extend_from_slice(b"\r\n");
                r
            }),
        (key(), 0u64..20, value(), nr()).prop_map(|(k, cas, v, nr)| {
            let mut r = format!("cas {k} 0 0 {} {cas}{nr}\r\n", v.len()).into_bytes();
            r.extend_from_slice(&v);
            r.extend_from_slice(b"\r\n");
            r
        }),
        (
            prop::sample::select(vec!["get", "gets", "gat 0", "gats 100000"]),
            prop::collection::vec(key(), 1..6)
        )
            .prop_map(|(c, ks)| format!("{c} {}\r\n", ks.join(" ")).into_bytes()),
        (
            prop::sample::select(vec!["incr", "decr"]),
            key(),
            any::<u64>(),
            nr()
        )
            .prop_map(|(c, k, d, nr)| format!("{c} {k} {d}{nr}\r\n").into_bytes()),
        (key(), nr()).prop_map(|(k, nr)| format!("delete {k}{nr}\r\n").into_bytes()),
        (key(), exptime()).prop_map(|(k, e)| format!("touch {k} {e}\r\n").into_bytes()),
        (
            prop::sample::select(vec!["mg", "md", "ma", "me"]),
            key(),
            meta_flags.clone()
        )
            .prop_map(|(c, k, f)| format!("{c} {k}{f}\r\n").into_bytes()),
        (key(), value(), meta_flags).prop_map(|(k, v, f)| {
            let mut r = format!("ms {k} {}{f}\r\n", v.len()).into_bytes();
            r.extend_from_slice(&v);
            r.extend_from_slice(b"\r\n");
            r
        }),
        prop::sample::select(vec![
            "mn\r\n",
            "version\r\n",
            "verbosity 1\r\n",
            "flush_all\r\n",
            "stats\r\n",
            "stats items\r\n",
            "stats slabs\r\n",
            "stats settings\r\n",
            "stats detail dump\r\n",
            "stats cachedump 1 10\r\n",
            "bogus\r\n",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// A pipeline of well-formed requests.
fn pipeline() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(request(), 1..25).prop_map(|v| v.concat())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    /// Replace a digit run start with a huge number (data lengths, flags).
    Huge(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::Huge),
    ]
}

fn mutate(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if v.is_empty() {
            break;
        }
        let at = |i: usize| i % v.len();
        match *m {
            Mutation::Flip(i, b) => {
                let i = at(i);
                v[i] = b;
            }
            Mutation::Insert(i, b) => {
                let i = at(i);
                v.insert(i, b);
            }
            Mutation::Delete(i) => {
                let i = at(i);
                v.remove(i);
            }
            Mutation::Truncate(i) => {
                let i = at(i);
                v.truncate(i);
            }
            Mutation::Huge(i) => {
                let i = at(i);
                if let Some(d) = v[i..].iter().position(u8::is_ascii_digit) {
                    let pos = i + d;
                    let huge: &[u8] = [
                        &b"2147483646"[..],
                        b"4294967295",
                        b"99999999999999999999",
                        b"1048577",
                    ][i % 4];
                    v.splice(pos..pos + 1, huge.iter().copied());
                }
            }
        }
    }
    v
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // Modest by default (CI has 2 cores); PROPTEST_CASES=5000 to dig deeper.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(160),
        // No regression files next to the sources; failures print their input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes(
        input in prop::collection::vec(interesting_byte(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        out_limit in 0usize..512,
    ) {
        check_stream(&input, &cuts, 1024, out_limit);
    }

    #[test]
    fn random_words(
        input in word_stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        out_limit in 0usize..512,
    ) {
        check_stream(&input, &cuts, 1024, out_limit);
    }

    #[test]
    fn valid_pipeline_split_anywhere(
        input in pipeline(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        out_limit in 0usize..2048,
    ) {
        check_stream(&input, &cuts, 1 << 20, out_limit);
    }

    #[test]
    fn mutated_pipeline(
        input in pipeline(),
        muts in prop::collection::vec(mutation(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        out_limit in 0usize..2048,
        small_items in any::<bool>(),
    ) {
        let input = mutate(input, &muts);
        check_stream(&input, &cuts, if small_items { 1024 } else { 1 << 20 }, out_limit);
    }
}

/// No command lets a key over 250 bytes reach the store (item headers keep
/// the key length in one byte): every protocol refuses it up front.
#[test]
fn keys_over_250_bytes_are_refused_by_every_command() {
    for len in [251, 255, 256, 300, 1000] {
        let k = "k".repeat(len);
        let b64 = "a".repeat(len.next_multiple_of(4)); // valid base64, still too long
        let requests = [
            format!("set {k} 0 0 1\r\nx\r\n"),
            format!("add {k} 0 0 1\r\nx\r\n"),
            format!("replace {k} 0 0 1\r\nx\r\n"),
            format!("append {k} 0 0 1\r\nx\r\n"),
            format!("prepend {k} 0 0 1\r\nx\r\n"),
            format!("cas {k} 0 0 1 1\r\nx\r\n"),
            format!("incr {k} 1\r\n"),
            format!("decr {k} 1\r\n"),
            format!("delete {k}\r\n"),
            format!("touch {k} 0\r\n"),
            format!("get a {k}\r\n"),
            format!("gets {k}\r\n"),
            format!("gat 0 {k}\r\n"),
            format!("gats 0 {k}\r\n"),
            format!("mg {k} v\r\n"),
            format!("ms {k} 1\r\nx\r\n"),
            format!("ms {k} 1 I\r\nx\r\n"),
            format!("md {k}\r\n"),
            format!("ma {k} N0 J1\r\n"),
            format!("me {k}\r\n"),
            format!("mg {b64} b v\r\n"),
            format!("ms {b64} 1 b\r\nx\r\n"),
            format!("ma {b64} b N0 J1\r\n"),
        ];
        for req in &requests {
            let mut d = Driver::new(1 << 20, 1 << 20, 0);
            let out = String::from_utf8_lossy(&d.feed(req.as_bytes())).into_owned();
            assert!(
                out.starts_with("CLIENT_ERROR") || out.starts_with("ERROR"),
                "{}… ({len}-byte key) answered {out:?}",
                &req[..12]
            );
            let items = String::from_utf8_lossy(&d.feed(b"stats items\r\n")).into_owned();
            assert_eq!(items, "END\r\n", "{}… stored an item", &req[..12]);
        }
    }
}

// ---------------------------------------------------------------------------
// Over real sockets

#[path = "common/mod.rs"]
mod common;

use common::{against_memcached, Conn, Server};
use std::time::Duration;

/// A connection that has already spoken ASCII, so a first byte of 0x80 in
/// the garbage is not taken for the binary protocol.
fn ascii_conn(server: &Server) -> Conn {
    let mut c = server.connect();
    c.assert_alive("connect");
    c
}

/// Garbage that memcached answers on the same connection, with its answer
/// (checked against memcached 1.6 with MEMCRAB_TEST_SERVER=memcached).
#[test]
fn garbage_lines_get_memcached_answers_and_keep_the_connection() {
    let server = Server::start(&[]);
    let long_key = "k".repeat(300);
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (b"\0\0\0\r\n".to_vec(), b"ERROR\r\n"),
        (b"\xff\xfe\xfd\r\n".to_vec(), b"ERROR\r\n"),
        (b"\x80\x01\x00\x05\x00\x00\r\n".to_vec(), b"ERROR\r\n"),
        (b"\r\n\n\n".to_vec(), b"ERROR\r\nERROR\r\nERROR\r\n"),
        (
            [b'a'; 5000].iter().chain(b"\r\n").copied().collect(),
            b"ERROR\r\n",
        ),
        (
            b"set k 0 0 -1\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set k 0 0 4294967295\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set k 0 0 2147483647\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set k 0 0 99999999999999999999\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"cas k 0 0 1 -1\r\nx\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        (
            b"incr k 99999999999999999999999\r\n".to_vec(),
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        (
            b"gat -99999999999999999999 k\r\n".to_vec(),
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (
            b"touch k 99999999999999999999\r\n".to_vec(),
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (
            format!("get {long_key}\r\n").into_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            format!("mg {long_key} v\r\n").into_bytes(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"ms k -1\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"ms k 2147483647\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"mg k v k c f s t q O T N F C M D I J h l u x\r\n".to_vec(),
            b"CLIENT_ERROR options flags are too long\r\n",
        ),
        (
            format!("mg k O{}\r\n", "x".repeat(100)).into_bytes(),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (
            b"mg ==== b\r\n".to_vec(),
            b"CLIENT_ERROR error decoding key\r\n",
        ),
        (
            b"ma k MZ\r\n".to_vec(),
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        (
            b"set a a a a a a a a a a a a a a a a a a a a a a a a a a a a\r\n".to_vec(),
            b"ERROR\r\n",
        ),
        (
            b"stats cachedump 999999999999 1\r\n".to_vec(),
            b"CLIENT_ERROR Illegal slab id\r\n",
        ),
        (
            b"stats detail \xff\r\n".to_vec(),
            b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
        ),
        // A NUL ends the command line for memcached (a C string).
        (b"get \0\r\n".to_vec(), b"ERROR\r\n"),
        (b"get a\0b\r\n".to_vec(), b"END\r\n"),
        (b"set k\0 0 0 1\r\nx\r\n".to_vec(), b"ERROR\r\nERROR\r\n"),
        (b"set k 0 0 1 \0junk\r\nx\r\n".to_vec(), b"STORED\r\n"),
        (b"ms k 1 \0junk\r\nx\r\n".to_vec(), b"HD\r\n"),
        (
            b"me \0\r\n".to_vec(),
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"mn\0 junk\r\n".to_vec(), b"MN\r\n"),
        // Meta numbers parse like C's strtol: whitespace around them is fine.
        (b"ms k \t1\r\nx\r\n".to_vec(), b"HD\r\n"),
        (b"ms k 1\t\r\nx\r\n".to_vec(), b"HD\r\n"),
        (
            b"ms k 1 T\t0 F\x0b7\r\nx\r\nmg k v f\r\n".to_vec(),
            b"HD\r\nVA 1 f7\r\nx\r\n",
        ),
        (
            b"ms n 1\r\n5\r\nma n D\t3 v\r\nma n D3\x0c v\r\nma n D+2 v\r\n".to_vec(),
            b"HD\r\nVA 1\r\n8\r\nVA 2\r\n11\r\nVA 2\r\n13\r\n",
        ),
        // memcached's strtok skips empty class ids.
        (b"lru_crawler crawl 1,,2,\r\n".to_vec(), b"OK\r\n"),
        (
            b"lru_crawler crawl ,\r\n".to_vec(),
            b"NOTSTARTED no items to crawl\r\n",
        ),
        (
            b"lru_crawler crawl 1,64\r\n".to_vec(),
            b"BADCLASS invalid class id\r\n",
        ),
    ];
    for (req, expected) in &cases {
        let mut c = ascii_conn(&server);
        c.roundtrip(req, expected);
        c.assert_alive(&String::from_utf8_lossy(&req[..req.len().min(60)]));
    }
    server.connect().assert_alive("garbage lines");
}

/// Lines that are too long or data blocks that are too large: memcached's
/// answer, and the server goes on serving.
#[test]
fn huge_lines_and_data_lengths() {
    let server = Server::start(&[]);

    // A non-get line over 2048 bytes that never ends: memcached closes it.
    let mut c = ascii_conn(&server);
    c.send_until_closed(&vec![b'a'; 1 << 20]);
    assert!(c.is_closed(), "1 MB line without newline should close");
    server.connect().assert_alive("1 MB line");

    // A value over the item size limit is refused and its bytes swallowed;
    // the connection then reads commands again.
    let mut c = ascii_conn(&server);
    let len = 2 << 20;
    c.send(format!("set big 0 0 {len}\r\n").as_bytes());
    let mut block = vec![b'z'; len];
    block.extend_from_slice(b"\r\n");
    c.send(&block);
    assert_eq!(c.read_line(), "SERVER_ERROR object too large for cache\r\n");
    c.assert_alive("too-large set");

    let mut c = ascii_conn(&server);
    c.send(format!("ms big {len} T0\r\n").as_bytes());
    c.send(&block);
    assert_eq!(c.read_line(), "SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"mn\r\n", b"MN\r\n");

    // A data length of ~1 GB that never arrives: the connection swallows,
    // and others are served meanwhile.
    let mut c = ascii_conn(&server);
    // (memcached answers only once the block is swallowed, so no read here.)
    c.send(b"set huge 0 0 1073741824\r\n");
    c.send(&[b'x'; 100_000]);
    server.connect().assert_alive("1 GB data length");
}

/// Deterministic xorshift so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes, random lines and random mixes of command fragments over
/// many connections: the server stays up and keeps serving.
#[test]
fn random_garbage_over_sockets() {
    let server = Server::start(&[]);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let fragments: &[&[u8]] = &[
        b"get ",
        b"set ",
        b"ms ",
        b"mg ",
        b"ma ",
        b"md ",
        b"incr ",
        b"cas ",
        b"k ",
        b"0 ",
        b"1 ",
        b"-1 ",
        b"99999999999 ",
        b"2147483646 ",
        b"noreply ",
        b"v ",
        b"b ",
        b"\0",
        b"\r\n",
        b"\n",
        b"\x80",
        b"\xff",
        b"    ",
    ];
    for round in 0..40 {
        let mut c = ascii_conn(&server);
        let mut sent = Vec::new();
        for _ in 0..50 {
            match rng.below(3) {
                0 => {
                    let n = rng.below(200);
                    sent.extend((0..n).map(|_| rng.next() as u8));
                }
                1 => {
                    for _ in 0..rng.below(12) {
                        sent.extend_from_slice(fragments[rng.below(fragments.len())]);
                    }
                }
                _ => sent.extend_from_slice(b"\r\n"),
            }
        }
        // Never `quit` or `shutdown` by accident: only the bytes above.
        c.send(&sent);
        let _ = c.read_available(Duration::from_millis(50));
        server
            .connect()
            .assert_alive(&format!("garbage round {round}"));
    }
    let mut c = server.connect();
    c.roundtrip(b"set after 0 0 2\r\nok\r\n", b"STORED\r\n");
    assert_eq!(c.get("after"), Some((0, b"ok".to_vec())));
}

/// A multi-get naming one large value many times must not make the server
/// copy every reply into memory at once (memcached streams references).
#[test]
fn multiget_of_a_large_value_does_not_balloon_memory() {
    let server = Server::start(&["-m", "64"]);
    let mut c = server.connect();
    let value = vec![b'v'; 500_000];
    let mut req = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    let before = server.rss_kib();
    // 400 hits of 500 KB = 200 MB of replies, requested in a 1.6 KB line
    // that the client does not read yet.
    c.send(format!("get{}\r\n", " big".repeat(400)).as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew {grown} KiB for one unread multi-get"
    );
    server.connect().assert_alive("multi-get");
    // The replies are all there, in order, once the client reads.
    for _ in 0..400 {
        assert_eq!(c.read_line(), "VALUE big 0 500000\r\n");
        let v = c.read_exact(value.len() + 2);
        assert!(v[..value.len()] == value[..] && v.ends_with(b"\r\n"));
    }
    assert_eq!(c.read_line(), "END\r\n");
    let _ = against_memcached;
}

/// The same multi-get over UDP: the reply cannot be numbered past 65535
/// datagrams, so it must not be built past that either.
#[test]
fn udp_multiget_of_a_large_value_is_bounded() {
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port");
    let server = Server::start(&["-m", "64", "-U", &udp_port.to_string()]);
    let mut c = server.connect();
    let value = vec![b'v'; 500_000];
    let mut req = format!("set b 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    let before = server.rss_kib();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    // 650 hits of 500 KB = 325 MB of replies from one 1.3 KB datagram.
    let mut dgram = vec![0, 1, 0, 0, 0, 1, 0, 0];
    dgram.extend_from_slice(format!("get{}\r\n", " b".repeat(650)).as_bytes());
    sock.send_to(&dgram, ("127.0.0.1", udp_port)).expect("send");
    std::thread::sleep(Duration::from_millis(2000));
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < 128 * 1024,
        "RSS grew {grown} KiB for one UDP multi-get"
    );
    // Still serving UDP: a small request gets its one-datagram reply.
    sock.set_read_timeout(Some(Duration::from_millis(500))).ok();
    let mut buf = vec![0u8; 2048];
    let mut answered = false;
    for _ in 0..20 {
        sock.send_to(b"\0\x02\0\0\0\x01\0\0version\r\n", ("127.0.0.1", udp_port))
            .expect("send");
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n > 8 && buf[..2] == [0, 2] && buf[8..n].starts_with(b"VERSION ") {
                answered = true;
                break;
            }
        }
        if answered {
            break;
        }
    }
    assert!(answered, "no UDP answer to version");
    server.connect().assert_alive("UDP multi-get");
}

/// A client that sends a big multi-get and then half-closes still gets
/// every value before the server closes (memcached answers what it read).
#[test]
fn multiget_then_half_close_gets_every_value() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let value = vec![b'h'; 300_000];
    let mut req = format!("set h 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    c.send(format!("get{}\r\n", " h".repeat(100)).as_bytes());
    c.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..100 {
        assert_eq!(c.read_line(), "VALUE h 0 300000\r\n", "value {i}");
        let v = c.read_exact(value.len() + 2);
        assert!(v.ends_with(b"\r\n"));
    }
    assert_eq!(c.read_line(), "END\r\n");
    assert!(c.is_closed(), "closed after answering");
}
