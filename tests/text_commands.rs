//! Text protocol commands over a real socket, byte for byte as memcached 1.6
//! answers them: storage, retrieval, cas, delete, incr/decr, touch/gat/gats,
//! flush_all, verbosity, version, quit, cache_memlimit and noreply.
//! Every expectation here was first checked against memcached 1.6.18
//! (`MEMCRAB_TEST_SERVER=memcached cargo test --test text_commands`).
mod common;

use common::{Conn, Server};
use std::time::{Duration, Instant};

fn setup() -> (Server, Conn) {
    let s = Server::start(&[]);
    let c = s.connect();
    (s, c)
}

/// `gets <key>` and returns the CAS unique.
fn cas_of(c: &mut Conn, key: &str) -> u64 {
    c.send(format!("gets {key}\r\n").as_bytes());
    let line = c.read_line();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.len(), 5, "gets reply {line:?}");
    assert_eq!(parts[0], "VALUE");
    let len: usize = parts[3].parse().unwrap();
    c.read_exact(len + 2);
    assert_eq!(c.read_line(), "END\r\n");
    parts[4].parse().unwrap()
}

/// Polls `get key` until it misses; returns false if still present at the deadline.
fn wait_until_gone(c: &mut Conn, key: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if c.get(key).is_none() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn set_then_get_returns_value_and_flags() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set k 5 0 5\r\nhello\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 5 5\r\nhello\r\nEND\r\n");
    c.roundtrip(b"set k 4294967295 0 2\r\nhi\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 4294967295 2\r\nhi\r\nEND\r\n");
    // Empty values are legal.
    c.roundtrip(b"set e 0 0 0\r\n\r\n", b"STORED\r\n");
    c.roundtrip(b"get e\r\n", b"VALUE e 0 0\r\n\r\nEND\r\n");
}

#[test]
fn values_are_binary_safe() {
    let (_s, mut c) = setup();
    let mut req = b"set bin 0 0 8\r\n".to_vec();
    req.extend_from_slice(b"a\r\nb\0c\r\n");
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    c.roundtrip(b"get bin\r\n", b"VALUE bin 0 8\r\na\r\nb\0c\r\n\r\nEND\r\n");
}

#[test]
fn get_miss_and_multi_get_keep_request_order() {
    let (_s, mut c) = setup();
    c.roundtrip(b"get nothing\r\n", b"END\r\n");
    c.roundtrip(b"set a 1 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"set c 3 0 3\r\nCCC\r\n", b"STORED\r\n");
    c.roundtrip(
        b"get c b a\r\n",
        b"VALUE c 3 3\r\nCCC\r\nVALUE a 1 1\r\nA\r\nEND\r\n",
    );
    // A key asked twice is returned twice.
    c.roundtrip(
        b"get a a\r\n",
        b"VALUE a 1 1\r\nA\r\nVALUE a 1 1\r\nA\r\nEND\r\n",
    );
}

#[test]
fn key_of_250_bytes_is_accepted() {
    let (_s, mut c) = setup();
    let key = "k".repeat(250);
    c.roundtrip(
        format!("set {key} 0 0 1\r\nx\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(
        format!("get {key}\r\n").as_bytes(),
        format!("VALUE {key} 0 1\r\nx\r\nEND\r\n").as_bytes(),
    );
}

#[test]
fn large_value_round_trips() {
    let (_s, mut c) = setup();
    let value: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut req = b"set big 0 0 1000000\r\n".to_vec();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    c.send(b"get big\r\n");
    assert_eq!(c.read_line(), "VALUE big 0 1000000\r\n");
    assert!(c.read_exact(1_000_000) == value, "1 MB value corrupted");
    assert_eq!(c.read_exact(7), b"\r\nEND\r\n");
}

#[test]
fn add_and_replace() {
    let (_s, mut c) = setup();
    c.roundtrip(b"add k 0 0 1\r\n1\r\n", b"STORED\r\n");
    c.roundtrip(b"add k 0 0 1\r\n2\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"replace k 7 0 1\r\n3\r\n", b"STORED\r\n");
    c.roundtrip(b"replace nok 0 0 1\r\n4\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"get k nok\r\n", b"VALUE k 7 1\r\n3\r\nEND\r\n");
}

#[test]
fn append_and_prepend_keep_flags_and_need_an_item() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set g 9 0 1\r\n3\r\n", b"STORED\r\n");
    c.roundtrip(b"append g 5 100 2\r\nAP\r\n", b"STORED\r\n");
    c.roundtrip(b"prepend g 0 0 2\r\nPR\r\n", b"STORED\r\n");
    c.roundtrip(b"append nog 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"prepend nog 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"get g nog\r\n", b"VALUE g 9 5\r\nPR3AP\r\nEND\r\n");
}

#[test]
fn gets_and_cas() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 1 0 1\r\nA\r\n", b"STORED\r\n");
    let u1 = cas_of(&mut c, "a");
    c.roundtrip(
        format!("cas a 2 0 1 {}\r\nB\r\n", u1 + 1000).as_bytes(),
        b"EXISTS\r\n",
    );
    c.roundtrip(b"cas zz 0 0 1 1\r\nC\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(
        format!("cas a 2 0 1 {u1}\r\nB\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get a\r\n", b"VALUE a 2 1\r\nB\r\nEND\r\n");
    let u2 = cas_of(&mut c, "a");
    assert_ne!(u1, u2, "cas unique must change on modification");
    // The old unique no longer matches.
    c.roundtrip(
        format!("cas a 0 0 1 {u1}\r\nD\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
    // noreply: silent, but effective.
    c.send(format!("cas a 3 0 1 {u2} noreply\r\nE\r\n").as_bytes());
    c.roundtrip(b"get a\r\n", b"VALUE a 3 1\r\nE\r\nEND\r\n");
    // gets reply format.
    let u3 = cas_of(&mut c, "a");
    c.roundtrip(
        b"gets a\r\n",
        format!("VALUE a 3 1 {u3}\r\nE\r\nEND\r\n").as_bytes(),
    );
}

#[test]
fn cas_uniques_are_unique_across_keys_and_every_change() {
    let (_s, mut c) = setup();
    let mut seen = std::collections::HashSet::new();
    for i in 0..50 {
        let key = format!("u{}", i % 10);
        c.roundtrip(
            format!("set {key} 0 0 1\r\nx\r\n").as_bytes(),
            b"STORED\r\n",
        );
        assert!(seen.insert(cas_of(&mut c, &key)), "cas unique reused");
        c.roundtrip(
            format!("append {key} 0 0 1\r\ny\r\n").as_bytes(),
            b"STORED\r\n",
        );
        assert!(seen.insert(cas_of(&mut c, &key)), "cas unique reused");
    }
    c.roundtrip(b"set n 0 0 1\r\n1\r\n", b"STORED\r\n");
    let before = cas_of(&mut c, "n");
    c.roundtrip(b"incr n 1\r\n", b"2\r\n");
    assert_ne!(
        before,
        cas_of(&mut c, "n"),
        "incr must change the cas unique"
    );
    c.roundtrip(b"touch n 100\r\n", b"TOUCHED\r\n");
}

#[test]
fn delete_forms() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set g 0 0 1\r\nG\r\n", b"STORED\r\n");
    c.roundtrip(b"delete g\r\n", b"DELETED\r\n");
    c.roundtrip(b"delete g\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"set g 0 0 1\r\nG\r\n", b"STORED\r\n");
    // A zero time is accepted for old clients.
    c.roundtrip(b"delete g 0\r\n", b"DELETED\r\n");
    c.roundtrip(
        b"delete g 5\r\n",
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    );
    c.roundtrip(b"set g 0 0 1\r\nG\r\n", b"STORED\r\n");
    c.send(b"delete g noreply\r\n");
    c.send(b"delete g 0 noreply\r\n");
    c.roundtrip(b"get g\r\n", b"END\r\n");
    c.roundtrip(b"delete\r\n", b"ERROR\r\n");
}

#[test]
fn incr_and_decr() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set n 5 0 2\r\n10\r\n", b"STORED\r\n");
    c.roundtrip(b"incr n 5\r\n", b"15\r\n");
    c.roundtrip(b"decr n 1\r\n", b"14\r\n");
    c.roundtrip(b"decr n 100\r\n", b"0\r\n"); // clamps at zero
    assert_eq!(c.get_counter("n"), Some(0));
    assert_eq!(c.get("n").unwrap().0, 5, "incr/decr keep the flags");
    c.roundtrip(b"incr nokey 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"decr nokey 1\r\n", b"NOT_FOUND\r\n");
    // 64-bit unsigned: incr wraps.
    c.roundtrip(b"set m 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n");
    c.roundtrip(b"incr m 2\r\n", b"1\r\n");
    c.roundtrip(b"set m 0 0 20\r\n18446744073709551610\r\n", b"STORED\r\n");
    c.roundtrip(b"incr m 5\r\n", b"18446744073709551615\r\n");
    c.roundtrip(
        b"incr m 18446744073709551615\r\n",
        b"18446744073709551614\r\n",
    );
}

#[test]
fn incr_errors() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set s 0 0 3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(
        b"incr s 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    c.roundtrip(
        b"decr s 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    // More digits than fit in 64 bits is not a number either.
    c.roundtrip(b"set big 0 0 20\r\n99999999999999999999\r\n", b"STORED\r\n");
    c.roundtrip(
        b"incr big 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    c.roundtrip(b"set n 0 0 1\r\n1\r\n", b"STORED\r\n");
    for delta in ["abc", "-1", "18446744073709551616"] {
        c.roundtrip(
            format!("incr n {delta}\r\n").as_bytes(),
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
        );
    }
    c.roundtrip(b"incr n\r\n", b"ERROR\r\n");
    c.roundtrip(b"get n\r\n", b"VALUE n 0 1\r\n1\r\nEND\r\n");
}

#[test]
fn incr_changes_value_length() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set n 0 0 2\r\n99\r\n", b"STORED\r\n");
    c.roundtrip(b"incr n 1\r\n", b"100\r\n");
    c.roundtrip(b"get n\r\n", b"VALUE n 0 3\r\n100\r\nEND\r\n");
    c.roundtrip(b"incr n 999900\r\n", b"1000000\r\n");
    c.roundtrip(b"get n\r\n", b"VALUE n 0 7\r\n1000000\r\nEND\r\n");
    // Leading zeros are parsed as decimal.
    c.roundtrip(b"set z 0 0 3\r\n007\r\n", b"STORED\r\n");
    c.roundtrip(b"incr z 1\r\n", b"8\r\n");
    // Shrinking: protocol.txt allows the value to keep its length padded
    // with spaces (memcached does) or to shrink; the number must read back.
    c.roundtrip(b"decr n 999999\r\n", b"1\r\n");
    let (flags, v) = c.get("n").unwrap();
    assert_eq!(flags, 0);
    assert!(v == b"1" || v == b"1      ", "value after decr: {v:?}");
    // And it keeps counting correctly from there.
    c.roundtrip(b"incr n 41\r\n", b"42\r\n");
}

#[test]
fn touch_gat_gats() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set t 3 0 1\r\nT\r\n", b"STORED\r\n");
    c.roundtrip(b"touch t 100\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"touch nokey 10\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"gat 0 t nokey\r\n", b"VALUE t 3 1\r\nT\r\nEND\r\n");
    let u = cas_of(&mut c, "t");
    c.roundtrip(
        b"gats 100 t\r\n",
        format!("VALUE t 3 1 {u}\r\nT\r\nEND\r\n").as_bytes(),
    );
    c.roundtrip(b"gat 100 nokey\r\n", b"END\r\n");
    c.send(b"touch t 100 noreply\r\n");
    c.roundtrip(b"get t\r\n", b"VALUE t 3 1\r\nT\r\nEND\r\n");
    // A negative TTL expires the item at once.
    c.roundtrip(b"touch t -1\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"get t\r\n", b"END\r\n");
    c.roundtrip(b"set t 0 100 1\r\nT\r\n", b"STORED\r\n");
    c.roundtrip(b"gat -1 t\r\n", b"VALUE t 0 1\r\nT\r\nEND\r\n");
    c.roundtrip(b"get t\r\n", b"END\r\n");
}

#[test]
fn touch_and_gat_extend_a_short_ttl() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 0 2 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"set b 0 2 1\r\nB\r\n", b"STORED\r\n");
    c.roundtrip(b"set short 0 2 1\r\nS\r\n", b"STORED\r\n");
    c.roundtrip(b"touch a 100\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"gat 100 b\r\n", b"VALUE b 0 1\r\nB\r\nEND\r\n");
    assert!(wait_until_gone(&mut c, "short", Duration::from_secs(5)));
    c.roundtrip(
        b"get a b\r\n",
        b"VALUE a 0 1\r\nA\r\nVALUE b 0 1\r\nB\r\nEND\r\n",
    );
}

#[test]
fn exptime_relative_absolute_and_negative() {
    let (_s, mut c) = setup();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    c.roundtrip(b"set neg 0 -1 1\r\nN\r\n", b"STORED\r\n");
    c.roundtrip(b"get neg\r\n", b"END\r\n");
    // Over 30 days means an absolute unix time.
    c.roundtrip(
        format!("set past 0 {} 1\r\nP\r\n", now - 100).as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get past\r\n", b"END\r\n");
    c.roundtrip(
        format!("set future 0 {} 1\r\nF\r\n", now + 3600).as_bytes(),
        b"STORED\r\n",
    );
    // Exactly 30 days is still relative.
    c.roundtrip(b"set month 0 2592000 1\r\nM\r\n", b"STORED\r\n");
    c.roundtrip(b"set rel 0 1 1\r\nR\r\n", b"STORED\r\n");
    c.roundtrip(
        b"get future month\r\n",
        b"VALUE future 0 1\r\nF\r\nVALUE month 0 1\r\nM\r\nEND\r\n",
    );
    assert!(
        wait_until_gone(&mut c, "rel", Duration::from_secs(4)),
        "item with exptime 1 did not expire"
    );
    c.roundtrip(b"get future\r\n", b"VALUE future 0 1\r\nF\r\nEND\r\n");
}

#[test]
fn flush_all_forms() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"flush_all 0\r\n", b"OK\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.send(b"flush_all noreply\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.roundtrip(
        b"flush_all abc\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
    );
    // Items stored after a flush are fine.
    c.roundtrip(b"set b 0 0 1\r\nB\r\n", b"STORED\r\n");
    c.roundtrip(b"get b\r\n", b"VALUE b 0 1\r\nB\r\nEND\r\n");
}

#[test]
fn flush_all_with_delay() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"flush_all 2\r\n", b"OK\r\n");
    // Still there right after the command...
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nA\r\nEND\r\n");
    // ...and gone once the delay has passed.
    assert!(
        wait_until_gone(&mut c, "a", Duration::from_secs(5)),
        "flush_all 2 did not flush"
    );
    // Items stored after the flush took effect survive.
    std::thread::sleep(Duration::from_millis(1100));
    c.roundtrip(b"set c 0 0 1\r\nC\r\n", b"STORED\r\n");
    c.roundtrip(b"get c\r\n", b"VALUE c 0 1\r\nC\r\nEND\r\n");
    c.send(b"flush_all 1 noreply\r\n");
    c.roundtrip(b"version\r\n", b"VERSION ");
    c.read_line();
    assert!(wait_until_gone(&mut c, "c", Duration::from_secs(5)));
}

#[test]
fn version_is_1_6() {
    let (_s, mut c) = setup();
    c.send(b"version\r\n");
    let l = c.read_line();
    assert!(l.starts_with("VERSION 1.6."), "{l:?}");
    assert!(l.ends_with("\r\n"));
}

#[test]
fn verbosity_forms() {
    let (_s, mut c) = setup();
    c.roundtrip(b"verbosity 1\r\n", b"OK\r\n");
    c.roundtrip(b"verbosity 0\r\n", b"OK\r\n");
    c.send(b"verbosity 1 noreply\r\n");
    c.roundtrip(b"verbosity\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"verbosity abc\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    c.roundtrip(b"verbosity 1 2 3\r\n", b"ERROR\r\n");
}

#[test]
fn quit_closes_the_connection() {
    let (s, mut c) = setup();
    c.send(b"quit\r\n");
    assert!(c.is_closed());
    // Pending commands after quit are not answered.
    let mut c2 = s.connect();
    c2.send(b"quit\r\nversion\r\n");
    assert!(c2.is_closed());
    let mut c3 = s.connect();
    c3.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
}

#[test]
fn cache_memlimit() {
    let (_s, mut c) = setup();
    c.roundtrip(b"cache_memlimit 100\r\n", b"OK\r\n");
    assert_eq!(c.stats("")["limit_maxbytes"], (100u64 << 20).to_string());
    c.send(b"cache_memlimit 80 noreply\r\n");
    assert_eq!(c.stats("")["limit_maxbytes"], (80u64 << 20).to_string());
    c.roundtrip(b"cache_memlimit\r\n", b"ERROR\r\n");
    c.roundtrip(b"cache_memlimit abc\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"cache_memlimit 1\r\n",
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
    );
}

#[test]
fn noreply_on_every_storage_command() {
    let (_s, mut c) = setup();
    c.send(b"add g 0 0 1 noreply\r\n1\r\n");
    c.send(b"add g 0 0 1 noreply\r\n2\r\n");
    c.send(b"replace g 0 0 1 noreply\r\n3\r\n");
    c.send(b"append g 0 0 1 noreply\r\n4\r\n");
    c.send(b"prepend g 0 0 1 noreply\r\n5\r\n");
    c.send(b"incr g 1 noreply\r\n");
    c.roundtrip(b"get g\r\n", b"VALUE g 0 3\r\n535\r\nEND\r\n");
    c.send(b"decr g 100 noreply\r\n");
    c.send(b"set h 0 0 1 noreply\r\nH\r\n");
    c.roundtrip(
        b"get g h\r\n",
        b"VALUE g 0 3\r\n435\r\nVALUE h 0 1\r\nH\r\nEND\r\n",
    );
    c.send(b"delete g noreply\r\n");
    // Errors are silenced too.
    c.send(b"incr h 1 noreply\r\n");
    c.send(b"incr h abc noreply\r\n");
    c.roundtrip(b"get g\r\n", b"END\r\n");
}

#[test]
fn cas_disabled_with_dash_c() {
    // -C: no CAS uniques; gets/gats show 0 and cas never matches.
    let s = Server::start(&["-C"]);
    let mut c = s.connect();
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"gets a\r\n", b"VALUE a 0 1 0\r\nA\r\nEND\r\n");
    c.roundtrip(b"gats 10 a\r\n", b"VALUE a 0 1 0\r\nA\r\nEND\r\n");
    c.roundtrip(b"cas a 0 0 1 0\r\nB\r\n", b"EXISTS\r\n");
    c.roundtrip(b"cas a 0 0 1 1\r\nC\r\n", b"EXISTS\r\n");
    c.roundtrip(b"cas nokey 0 0 1 1\r\nC\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nA\r\nEND\r\n");
}

#[test]
fn cas_unique_is_a_64_bit_number() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 0 0 1\r\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"cas a 0 0 1 18446744073709551615\r\nB\r\n", b"EXISTS\r\n");
    // Out of range or negative: the line is bad, the data line then an ERROR.
    c.roundtrip(
        b"cas a 0 0 1 18446744073709551616\r\nB\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"cas a 0 0 1 -1\r\nB\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nA\r\nEND\r\n");
}
