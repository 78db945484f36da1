//! Storage engine behaviour over real sockets: eviction order, TEMP items,
//! rebalancing after a size shift, chained large items, slab commands and an
//! 8-thread consistency stress. Run against memcached with
//! `MEMCRAB_TEST_SERVER=memcached` to see which expectations it shares
//! (the shift test is where memcrab is meant to do better).

mod common;

use common::{against_memcached, set_many, Conn, Server};
use std::time::Duration;

fn set(c: &mut Conn, key: &str, value: &[u8], exptime: i64) {
    let mut req = format!("set {key} 0 {exptime} {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
}

/// How many of the keys hit, by multi-get.
fn count_hits(c: &mut Conn, prefix: &str, range: std::ops::Range<usize>) -> usize {
    let ids: Vec<usize> = range.collect();
    let mut hits = 0;
    for chunk in ids.chunks(100) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("{prefix}{i}")).collect();
        c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
        loop {
            let l = c.read_line();
            if l == "END\r\n" {
                break;
            }
            let len: usize = l.split_whitespace().nth(3).unwrap().parse().unwrap();
            c.read_exact(len + 2);
            hits += 1;
        }
    }
    hits
}

#[test]
fn recently_read_keys_outlive_never_read_ones() {
    let s = Server::start(&["-m", "8"]);
    let mut c = s.connect();
    set_many(&mut c, "k", 0..3000, 1000);
    // Read the first 500 twice (active), then write 4x the limit, re-reading
    // them now and then as a working set would be.
    for _ in 0..2 {
        assert_eq!(count_hits(&mut c, "k", 0..500), 500);
    }
    for round in 0..8 {
        let start = 3000 + round * 4000;
        set_many(&mut c, "k", start..start + 4000, 1000);
        count_hits(&mut c, "k", 0..500);
    }
    let read = count_hits(&mut c, "k", 0..500);
    let unread = count_hits(&mut c, "k", 500..3000);
    assert!(read >= 475, "read keys kept: {read}/500");
    assert_eq!(unread, 0, "never-read keys kept: {unread}");
    let st = c.stats("");
    assert!(st["evictions"].parse::<u64>().unwrap() > 0);
}

#[test]
fn temp_items_are_never_evicted() {
    // TTL below temporary_ttl puts items in TEMP, which eviction skips.
    let s = Server::start(&["-m", "8", "-o", "temporary_ttl=61"]);
    let mut c = s.connect();
    for i in 0..300 {
        set(&mut c, &format!("temp{i}"), b"short-lived", 30);
    }
    set_many(&mut c, "n", 0..40_000, 1000);
    assert_eq!(count_hits(&mut c, "temp", 0..300), 300);
    let st = c.stats("");
    assert!(st["evictions"].parse::<u64>().unwrap() > 0);
    if !against_memcached() {
        let items = c.stats("items");
        let temp: u64 = items
            .iter()
            .filter(|(k, _)| k.ends_with(":number_temp"))
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum();
        assert_eq!(temp, 300);
    }
}

#[test]
fn pages_move_to_the_class_that_needs_them() {
    let s = Server::start(&["-m", "16"]);
    let mut c = s.connect();
    // Fill with 100-byte values, then write 10 KB values worth twice the
    // limit, paced over ~4 s so the maintainer sees a sustained shift.
    set_many(&mut c, "s", 0..200_000, 100);
    let n = 3200;
    for start in (0..n).step_by(100) {
        set_many(&mut c, "b", start..start + 100, 10_000);
        std::thread::sleep(Duration::from_millis(120));
    }
    let newest = count_hits(&mut c, "b", n * 3 / 4..n);
    if against_memcached() {
        eprintln!(
            "memcached kept {newest}/{} of the newest 10 KB items",
            n / 4
        );
        return;
    }
    // The maintainer works in wall-clock time and shares 2 cores with the
    // other tests, so this checks rebalancing happened (memcached keeps ~3%
    // here), not the 90% goal: that is measured by
    // scripts/memory-vs-memcached.sh, where memcrab keeps 100%.
    assert!(
        newest * 4 >= (n / 4) * 3,
        "newest quarter kept: {newest}/{}",
        n / 4
    );
    let st = c.stats("");
    assert!(st["slabs_moved"].parse::<u64>().unwrap() > 0);
}

#[test]
fn chained_large_items_round_trip() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.connect();
    for &n in &[1usize, 100_000, 524_288, 600_000, 1_000_000, 1_048_000] {
        let v: Vec<u8> = (0..n).map(|i| b'a' + (i * 31 % 26) as u8).collect();
        let key = format!("big{n}");
        set(&mut c, &key, &v, 0);
        let (_, got) = c.get(&key).expect("large item missing");
        assert!(got == v, "{n}-byte value corrupted");
    }
    // Append across the chain boundary.
    c.roundtrip(b"append big600000 0 0 4\r\ntail\r\n", b"STORED\r\n");
    let (_, got) = c.get("big600000").unwrap();
    assert_eq!(got.len(), 600_004);
    assert_eq!(&got[600_000..], b"tail");
    // Past -I: refused, connection usable.
    let mut req = b"set huge 0 0 1048577\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 1_048_577));
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"get huge\r\n", b"END\r\n");
}

/// The slab class id holding the most pages, from `stats slabs`.
fn class_with_most_pages(c: &mut Conn) -> String {
    let slabs = c.stats("slabs");
    let (cls, _) = slabs
        .iter()
        .filter(|(k, _)| k.ends_with(":total_pages"))
        .max_by_key(|(_, v)| v.parse::<u64>().unwrap())
        .unwrap();
    cls.split(':').next().unwrap().to_string()
}

#[test]
fn slabs_commands() {
    let s = Server::start(&["-m", "16"]);
    let mut c = s.connect();
    c.roundtrip(
        b"slabs reassign 1 1\r\n",
        b"SAME src and dst class are identical\r\n",
    );
    c.roundtrip(
        b"slabs reassign 1 2\r\n",
        b"NOSPARE source class has no spare pages\r\n",
    );
    c.roundtrip(b"slabs automove 3\r\n", b"ERROR\r\n");
    c.roundtrip(b"slabs automove 0\r\n", b"OK\r\n");
    set_many(&mut c, "k", 0..50_000, 10);
    let cls = class_with_most_pages(&mut c);
    c.roundtrip(format!("slabs reassign {cls} 9\r\n").as_bytes(), b"OK\r\n");
    if against_memcached() {
        return; // memcached moves the page asynchronously
    }
    let st = c.stats("");
    assert_eq!(st["slabs_moved"], "1");
    assert_eq!(st["slab_reassign_running"], "0");
}

/// The 1,000-byte value of key `k{i}` in the page-move tests: different per
/// key, so an item moved onto another's chunk would show.
fn numbered(i: usize) -> Vec<u8> {
    format!("<{i}>").bytes().cycle().take(1000).collect()
}

/// Stores `k0..k{n}` with their numbered values, then deletes those `keep`
/// rejects.
fn fill_then_delete(c: &mut Conn, n: usize, keep: impl Fn(usize) -> bool) {
    for i in 0..n {
        set(c, &format!("k{i}"), &numbered(i), 0);
    }
    for i in (0..n).filter(|&i| !keep(i)) {
        c.roundtrip(format!("delete k{i}\r\n").as_bytes(), b"DELETED\r\n");
    }
}

/// Every key `keep` accepts still holds its own value.
fn assert_kept(c: &mut Conn, n: usize, keep: impl Fn(usize) -> bool) {
    for i in (0..n).filter(|&i| keep(i)) {
        let (_, got) = c.get(&format!("k{i}")).expect("item lost");
        assert!(got == numbered(i), "k{i} corrupted");
    }
}

#[test]
fn page_move_keeps_items_that_fit_elsewhere_in_their_class() {
    let s = Server::start(&["-m", "16", "-o", "slab_automove=0"]);
    let mut c = s.connect();
    // Every other item goes: each page of the class is half free.
    let keep = |i: usize| i % 2 == 1;
    fill_then_delete(&mut c, 4000, keep);
    let cls = class_with_most_pages(&mut c);
    c.roundtrip(format!("slabs reassign {cls} 1\r\n").as_bytes(), b"OK\r\n");
    // memcached moves the page in the background.
    let st = c.stats_when("", Duration::from_secs(5), |st| st["slabs_moved"] == "1");
    assert_eq!(st["slabs_moved"], "1");
    assert!(st["slab_reassign_rescues"].parse::<u64>().unwrap() > 0);
    assert_eq!(st["slab_reassign_evictions_nomem"], "0");
    assert_eq!(st["evictions"], "0");
    assert_kept(&mut c, 4000, keep);
}

#[test]
fn free_memory_goes_back_to_the_global_page_pool() {
    let s = Server::start(&["-m", "16", "-o", "slab_automove_window=3"]);
    let mut c = s.connect();
    // Three in four go: more than 2.5 pages of the class are free chunks.
    let keep = |i: usize| i.is_multiple_of(4);
    fill_then_delete(&mut c, 6000, keep);
    let st = c.stats_when("", Duration::from_secs(15), |st| {
        st["slab_global_page_pool"] != "0"
    });
    assert_ne!(st["slab_global_page_pool"], "0", "no page given back");
    assert_eq!(st["evictions"], "0");
    assert_eq!(st["slab_reassign_evictions_nomem"], "0");
    assert_kept(&mut c, 6000, keep);
}

#[test]
fn eight_threads_only_ever_read_values_written_for_that_key() {
    let s = Server::start(&["-m", "8", "-t", "4"]);
    let port = s.port;
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut seen = 0;
                for n in 0..2_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("key{}", x % 200);
                    match (x >> 32) % 4 {
                        0 | 1 => {
                            // Self-describing value: key/thread/seq repeated;
                            // sizes span small classes to chained items.
                            let unit = format!("{key}/{t}/{n}/");
                            let reps = if x % 50 == 0 {
                                40_000
                            } else {
                                1 + (x >> 40) as usize % 300
                            };
                            set(&mut c, &key, unit.repeat(reps).as_bytes(), 0);
                        }
                        2 => {
                            c.send(format!("delete {key}\r\n").as_bytes());
                            let l = c.read_line();
                            assert!(l == "DELETED\r\n" || l == "NOT_FOUND\r\n", "{l}");
                        }
                        _ => {
                            if let Some((_, v)) = c.get(&key) {
                                seen += 1;
                                let text =
                                    String::from_utf8(v).expect("value is not what was written");
                                let pieces: Vec<&str> = text.split_terminator('/').collect();
                                assert_eq!(pieces.len() % 3, 0, "torn value for {key}");
                                for p in pieces.chunks(3) {
                                    assert_eq!(p[0], key, "value of another key under {key}");
                                    assert!(p[1].parse::<u64>().unwrap() < 8);
                                }
                                assert!(
                                    pieces
                                        .chunks(3)
                                        .all(|p| p[1] == pieces[1] && p[2] == pieces[2]),
                                    "mixed writes under {key}"
                                );
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let seen: u64 = handles
        .into_iter()
        .map(|h| h.join().expect("thread failed"))
        .sum();
    assert!(seen > 100, "too few hits to check anything: {seen}");
}

fn total_malloced(c: &mut Conn) -> u64 {
    c.stats("slabs")["total_malloced"].parse().unwrap()
}

#[test]
fn cache_memlimit_grows_and_shrinks_malloced_memory() {
    // memcached's dyn-maxbytes.t: raising the limit lets a full cache take
    // more pages; lowering it and emptying the cache gives pages back.
    // memcached decides over `slab_automove_window` seconds (30 by default).
    let s = Server::start(&["-m", "2", "-o", "slab_automove_window=3"]);
    let mut c = s.connect();
    set_many(&mut c, "k", 0..40, 66560); // more than 2 MB: evicts
    assert_ne!(c.stats("")["evictions"], "0");
    let full = total_malloced(&mut c);
    assert!(full <= 2 << 20, "{full}");
    c.roundtrip(b"cache_memlimit 16\r\n", b"OK\r\n");
    set_many(&mut c, "k", 40..150, 66560);
    let grown = total_malloced(&mut c);
    assert!(grown > full, "grew: {grown} > {full}");
    c.roundtrip(b"cache_memlimit 8\r\n", b"OK\r\n");
    let mut req = Vec::new();
    for i in 0..150 {
        req.extend_from_slice(format!("delete k{i}\r\n").as_bytes());
    }
    c.send(&req);
    for _ in 0..150 {
        let l = c.read_line();
        assert!(l == "DELETED\r\n" || l == "NOT_FOUND\r\n", "{l}");
    }
    // The rebalancer releases the emptied pages in the background.
    let mut now = grown;
    for _ in 0..80 {
        now = total_malloced(&mut c);
        if now <= 8 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(now < grown && now <= 8 << 20, "shrunk: {now} (was {grown})");
}
