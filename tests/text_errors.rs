//! Error replies of the text protocol, exactly as memcached 1.6 sends them,
//! and that the connection stays usable afterwards wherever memcached keeps
//! it open. Checked against memcached 1.6.18 with MEMCRAB_TEST_SERVER=memcached.
mod common;

use common::{Conn, Server};

fn setup() -> (Server, Conn) {
    let s = Server::start(&[]);
    let c = s.connect();
    (s, c)
}

/// The connection still answers and still stores.
fn assert_usable(c: &mut Conn) {
    c.roundtrip(b"set alive 0 0 2\r\nok\r\n", b"STORED\r\n");
    c.roundtrip(b"get alive\r\n", b"VALUE alive 0 2\r\nok\r\nEND\r\n");
}

#[test]
fn unknown_command_and_empty_line_are_error() {
    let (_s, mut c) = setup();
    c.roundtrip(b"bogus\r\n", b"ERROR\r\n");
    c.roundtrip(b"bogus with args\r\n", b"ERROR\r\n");
    c.roundtrip(b"\r\n", b"ERROR\r\n");
    c.roundtrip(b"GET a\r\n", b"ERROR\r\n"); // commands are case-sensitive
    assert_usable(&mut c);
}

#[test]
fn bare_newline_terminates_commands() {
    // memcached accepts "\n" alone as a line end.
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 0 0 1\nA\r\n", b"STORED\r\n");
    c.roundtrip(b"get a\n", b"VALUE a 0 1\r\nA\r\nEND\r\n");
}

#[test]
fn too_few_tokens_is_error() {
    let (_s, mut c) = setup();
    for req in [
        "get\r\n",
        "gets\r\n",
        "set k 0 0\r\n",
        "add k\r\n",
        "cas k 0 0 1\r\n",
        "incr k\r\n",
        "decr\r\n",
        "touch k\r\n",
        "delete\r\n",
        "gat\r\n",
    ] {
        c.roundtrip(req.as_bytes(), b"ERROR\r\n");
    }
    assert_usable(&mut c);
}

#[test]
fn bad_data_chunk() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n");
    // Two bytes too many: memcached reads <bytes>+2, sees no CRLF, answers
    // bad data chunk, and then parses the rest ("\r\n") as an empty command.
    c.roundtrip(
        b"set k 0 0 5\r\nhelloXX\r\n",
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    // The old value is untouched.
    c.roundtrip(b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    // With noreply the error is silent, the stray line still is an ERROR.
    c.roundtrip(b"set k 0 0 5 noreply\r\nhelloXX\r\n", b"ERROR\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    assert_usable(&mut c);
}

#[test]
fn bad_command_line_format() {
    let (_s, mut c) = setup();
    // Negative or non-numeric length: no data block is read.
    c.roundtrip(
        b"set k 0 0 -1\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    c.roundtrip(
        b"set k 0 0 abc\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    // Bad flags or exptime: the data line that follows is then a bad command.
    c.roundtrip(
        b"set e abc 0 1\r\nE\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"set e -1 0 1\r\nE\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"set e 0 abc 1\r\nE\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"cas a 0 0 1 abc\r\nD\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(b"get e k\r\n", b"END\r\n");
    assert_usable(&mut c);
}

#[test]
fn key_too_long_for_every_command() {
    let (_s, mut c) = setup();
    let k = "k".repeat(251);
    for req in [
        format!("get {k}\r\n"),
        format!("get a {k}\r\n"),
        format!("gets {k}\r\n"),
        format!("gat 1 {k}\r\n"),
        format!("gats 1 {k}\r\n"),
        format!("delete {k}\r\n"),
        format!("incr {k} 1\r\n"),
        format!("decr {k} 1\r\n"),
        format!("touch {k} 1\r\n"),
    ] {
        c.roundtrip(req.as_bytes(), b"CLIENT_ERROR bad command line format\r\n");
        c.roundtrip(b"version\r\n", b"VERSION 1.6");
        c.read_line();
    }
    // Storage commands: the data block is not swallowed, so its line is an ERROR.
    for cmd in ["set", "add", "replace", "append", "prepend"] {
        c.roundtrip(
            format!("{cmd} {k} 0 0 1\r\nx\r\n").as_bytes(),
            b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        );
    }
    c.roundtrip(
        format!("cas {k} 0 0 1 1\r\nx\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    assert_usable(&mut c);
}

#[test]
fn object_too_large_swallows_the_data_and_keeps_going() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set big 0 0 1\r\nb\r\n", b"STORED\r\n");
    let mut req = b"set big 0 0 2000000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2_000_000));
    req.extend_from_slice(b"\r\nget big\r\nversion\r\n");
    c.send(&req);
    assert_eq!(c.read_line(), "SERVER_ERROR object too large for cache\r\n");
    // A failed set removes the old value rather than leave stale data.
    assert_eq!(c.read_line(), "END\r\n");
    assert!(c.read_line().starts_with("VERSION 1.6"));
    // Just over the default -I 1m.
    let mut req = b"set u 0 0 1048577\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'y', 1_048_577));
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"SERVER_ERROR object too large for cache\r\n");
    assert_usable(&mut c);
}

#[test]
fn object_too_large_sent_slowly_is_swallowed() {
    // The client may send the data block after a pause; the server must
    // still skip exactly <bytes>+2 and then parse the next command.
    let (_s, mut c) = setup();
    c.send(b"set slow 0 0 1500000\r\n");
    let chunk = vec![b'z'; 100_000];
    for _ in 0..15 {
        c.send(&chunk);
    }
    c.send(b"\r\n");
    assert_eq!(c.read_line(), "SERVER_ERROR object too large for cache\r\n");
    assert_usable(&mut c);
}

#[test]
fn object_too_large_with_noreply_is_silent() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set a 0 0 1\r\n1\r\n", b"STORED\r\n");
    let mut req = b"set a 0 0 2000000 noreply\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2_000_000));
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    c.roundtrip(b"get a\r\n", b"END\r\n");
    assert_usable(&mut c);
}

#[test]
fn max_item_size_flag_raises_the_limit() {
    let s = Server::start(&["-I", "2m"]);
    let mut c = s.connect();
    let mut req = b"set big 0 0 1500000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'q', 1_500_000));
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    let (_, v) = c.get("big").unwrap();
    assert_eq!(v.len(), 1_500_000);
    assert!(v.iter().all(|&b| b == b'q'));
}

#[test]
fn bad_exptime_arguments() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set t 0 0 1\r\nT\r\n", b"STORED\r\n");
    for req in [
        "touch t abc\r\n",
        "gat abc t\r\n",
        "gats abc t\r\n",
        "gat t\r\n",
        "flush_all abc\r\n",
    ] {
        c.roundtrip(req.as_bytes(), b"CLIENT_ERROR invalid exptime argument\r\n");
    }
    c.roundtrip(b"get t\r\n", b"VALUE t 0 1\r\nT\r\nEND\r\n");
}

#[test]
fn invalid_delta_argument() {
    let (_s, mut c) = setup();
    c.roundtrip(b"set n 0 0 1\r\n5\r\n", b"STORED\r\n");
    c.roundtrip(
        b"incr n x\r\n",
        b"CLIENT_ERROR invalid numeric delta argument\r\n",
    );
    c.roundtrip(
        b"decr n -5\r\n",
        b"CLIENT_ERROR invalid numeric delta argument\r\n",
    );
    c.roundtrip(b"incr n 1\r\n", b"6\r\n");
}

#[test]
fn long_line_without_newline_closes_the_connection() {
    // memcached drops a client whose command line passes 2048 bytes without
    // a newline (unless it is a multi-get, see below); the server lives on.
    let (s, mut c) = setup();
    c.send(&[b'x'; 2500]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send(&[b'x'; 2500]);
    assert!(c.is_closed(), "connection should be closed");
    let mut c2 = s.connect();
    assert_usable(&mut c2);
}

#[test]
fn long_junk_line_in_one_write_is_error() {
    let (_s, mut c) = setup();
    let mut req = vec![b'x'; 3000];
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"ERROR\r\n");
    assert_usable(&mut c);
}

#[test]
fn long_multi_get_line_sent_in_pieces() {
    // Multi-gets longer than 2048 bytes are legitimate and must work even
    // when the line arrives in several reads.
    let (_s, mut c) = setup();
    c.roundtrip(b"set k7 0 0 2\r\nv7\r\n", b"STORED\r\n");
    let mut line = b"get".to_vec();
    for i in 0..600 {
        line.extend_from_slice(format!(" k{i}").as_bytes());
    }
    let (a, b) = line.split_at(1500);
    c.send(a);
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send(b);
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.roundtrip(b"\r\n", b"VALUE k7 0 2\r\nv7\r\nEND\r\n");
    assert_usable(&mut c);
}

#[test]
fn shutdown_refused_without_dash_a() {
    let (_s, mut c) = setup();
    c.roundtrip(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n");
    assert_usable(&mut c);
}

#[test]
fn stats_unknown_group_is_error() {
    let (_s, mut c) = setup();
    c.roundtrip(b"stats bogus\r\n", b"ERROR\r\n");
    assert_usable(&mut c);
}
