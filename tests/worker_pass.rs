//! What a worker does per pass over its ready connections, over real
//! sockets: it reads them all first while prefetching what their requests
//! look up, then serves them, then sends all replies in one batch (one
//! io_uring submission; `-o no_batch_send` and the fallback where io_uring
//! is unavailable send one at a time). Both send modes must put the same
//! bytes on the wire: many connections at once, pipelines, replies far
//! larger than the socket buffers (partial sends), `quit` after pipelined
//! requests, lookups while the hash table grows. The traffic tests also
//! pass with `MEMCRAB_TEST_SERVER=memcached` (started without the `-o`
//! option, which it would refuse).
mod common;

use common::{against_memcached, set_req, value_for, value_reply, Conn, Server};
use std::io::{Read, Write};
use std::time::Duration;

const BATCHED: &[&str] = &["-t", "2"];

fn one_by_one() -> &'static [&'static str] {
    if against_memcached() {
        BATCHED
    } else {
        &["-t", "2", "-o", "no_batch_send"]
    }
}

/// 24 clients at once, each pipelining a set and a two-key get per round:
/// every client must get exactly its own replies, in order.
fn many_clients(args: &[&str]) {
    let srv = Server::start(args);
    let clients: Vec<_> = (0..24)
        .map(|t| {
            let mut c = srv.connect();
            std::thread::spawn(move || {
                for i in 0..300usize {
                    let key = format!("c{t}:{i}");
                    let v = value_for(&key, 16 + (i * 37 + t) % 700);
                    let mut req = Vec::new();
                    set_req(&mut req, &key, &v);
                    req.extend_from_slice(format!("get {key} c{t}:{}\r\n", i + 1).as_bytes());
                    let mut want = b"STORED\r\n".to_vec();
                    want.extend(value_reply(&key, &v));
                    want.extend_from_slice(b"END\r\n");
                    c.roundtrip(&req, &want);
                }
            })
        })
        .collect();
    for h in clients {
        h.join().expect("client thread");
    }
}

#[test]
fn many_clients_get_exactly_their_replies_batched() {
    many_clients(BATCHED);
}

#[test]
fn many_clients_get_exactly_their_replies_one_by_one() {
    many_clients(one_by_one());
}

/// Stores 2,000 values of 2 KB (`value_for`) under `{prefix}:{i}`, in one
/// pipelined write; returns the keys. A multi-get of all of them is a 4 MB
/// reply, far more than the socket buffers hold.
fn store_4mb(c: &mut Conn, prefix: &str) -> Vec<String> {
    let keys: Vec<String> = (0..2000).map(|i| format!("{prefix}:{i}")).collect();
    let mut req = Vec::new();
    for k in &keys {
        set_req(&mut req, k, &value_for(k, 2048));
    }
    c.stream.write_all(&req).expect("write sets");
    assert_eq!(
        c.read_exact(8 * keys.len()),
        b"STORED\r\n".repeat(keys.len())
    );
    keys
}

/// A 4 MB multi-get reply read only after a pause: the sends come back
/// partial and would-block, and the rest must follow when the client reads.
fn reply_larger_than_socket_buffers(args: &[&str]) {
    let srv = Server::start(args);
    let mut c = srv.connect();
    let keys = store_4mb(&mut c, "big");
    let mut want = Vec::new();
    let mut get = b"get".to_vec();
    for k in &keys {
        get.extend_from_slice(b" ");
        get.extend_from_slice(k.as_bytes());
        want.extend(value_reply(k, &value_for(k, 2048)));
    }
    get.extend_from_slice(b"\r\n");
    want.extend_from_slice(b"END\r\n");
    c.stream.write_all(&get).expect("write get");
    std::thread::sleep(Duration::from_millis(300));
    let got = c.read_exact(want.len());
    assert!(got == want, "multi-get reply differs");
    // The connection is still in step afterwards.
    c.roundtrip(b"get big:7 nosuch\r\n", &{
        let mut w = Vec::new();
        w.extend(value_reply("big:7", &value_for("big:7", 2048)));
        w.extend_from_slice(b"END\r\n");
        w
    });
}

#[test]
fn reply_larger_than_socket_buffers_batched() {
    reply_larger_than_socket_buffers(BATCHED);
}

#[test]
fn reply_larger_than_socket_buffers_one_by_one() {
    reply_larger_than_socket_buffers(one_by_one());
}

/// `quit` after pipelined requests: their replies, then the close.
fn pipeline_then_quit(args: &[&str]) {
    let srv = Server::start(args);
    let mut c = srv.connect();
    c.send(b"set q 0 0 3\r\nabc\r\nget q\r\nincr nosuch 1\r\nquit\r\nget q\r\n");
    let want = b"STORED\r\nVALUE q 0 3\r\nabc\r\nEND\r\nNOT_FOUND\r\n";
    assert_eq!(c.read_exact(want.len()), want);
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after quit: {rest:?}");
}

#[test]
fn pipeline_then_quit_batched() {
    pipeline_then_quit(BATCHED);
}

#[test]
fn pipeline_then_quit_one_by_one() {
    pipeline_then_quit(one_by_one());
}

/// io_uring instances the server process holds (one per worker that sends
/// in batches).
fn io_uring_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|l| l.to_string_lossy().contains("io_uring"))
                .count()
        })
        .unwrap_or(0)
}

fn served(srv: &Server) -> Conn {
    let mut c = srv.connect();
    c.send(b"version\r\n");
    assert!(c.read_line().starts_with("VERSION "));
    c
}

/// Ring count once it is stable: workers set theirs up as they start.
fn settled_io_uring_fds(pid: u32, want: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let n = io_uring_fds(pid);
        if n == want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn workers_batch_through_io_uring_unless_told_not_to() {
    if against_memcached() {
        return;
    }
    let available = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|v| v.trim() == "0")
        .unwrap_or(false);
    let batched = Server::start(&["-t", "3"]);
    let _c = served(&batched);
    let one_by_one = Server::start(&["-t", "3", "-o", "no_batch_send"]);
    let _d = served(&one_by_one);
    assert_eq!(
        io_uring_fds(one_by_one.pid()),
        0,
        "no_batch_send uses no ring"
    );
    if available {
        assert_eq!(
            settled_io_uring_fds(batched.pid(), 3),
            3,
            "one ring per worker"
        );
    } else {
        eprintln!("io_uring disabled on this machine: only the fallback was checked");
    }
}

/// 8 clients pipelining sets and gets of fresh keys from a 4096-bucket
/// table to 48,000 items: lookups (and their prefetches) run while the
/// table doubles three times under them, and every value must come back.
#[test]
fn lookups_stay_exact_while_the_hash_table_grows() {
    let srv = Server::start(&["-t", "2", "-o", "hashpower=12"]);
    let clients: Vec<_> = (0..8)
        .map(|t| {
            let mut c = srv.connect();
            std::thread::spawn(move || {
                for round in 0..60usize {
                    let keys: Vec<String> = (0..100).map(|i| format!("g{t}:{round}:{i}")).collect();
                    let mut req = Vec::new();
                    let mut want = Vec::new();
                    for k in &keys {
                        set_req(&mut req, k, &value_for(k, 24));
                        want.extend_from_slice(b"STORED\r\n");
                    }
                    for k in &keys {
                        req.extend_from_slice(format!("get {k}\r\n").as_bytes());
                        want.extend(value_reply(k, &value_for(k, 24)));
                        want.extend_from_slice(b"END\r\n");
                    }
                    c.roundtrip(&req, &want);
                }
            })
        })
        .collect();
    for h in clients {
        h.join().expect("client thread");
    }
    let mut c = srv.connect();
    let s = c.stats("");
    // memcached grows its table in the background, later.
    if !against_memcached() {
        assert_eq!(s["curr_items"], "48000");
        let power: u32 = s["hash_power_level"].parse().unwrap_or(0);
        assert!(power > 12, "the table grew");
    }
}

/// 8 clients at once setting and reading back 100 KB values (read ahead of
/// serving, then into the item) and small ones pipelined behind them.
#[test]
fn large_values_from_many_clients_at_once() {
    let srv = Server::start(&["-t", "2"]);
    let clients: Vec<_> = (0..8)
        .map(|t| {
            let mut c = srv.connect();
            std::thread::spawn(move || {
                for i in 0..20usize {
                    let big = format!("L{t}:{i}");
                    let small = format!("s{t}:{i}");
                    let bv = value_for(&big, 100 * 1024 + i);
                    let sv = value_for(&small, 40);
                    let mut req = Vec::new();
                    set_req(&mut req, &big, &bv);
                    set_req(&mut req, &small, &sv);
                    req.extend_from_slice(format!("get {small} {big}\r\n").as_bytes());
                    let mut want = b"STORED\r\nSTORED\r\n".to_vec();
                    want.extend(value_reply(&small, &sv));
                    want.extend(value_reply(&big, &bv));
                    want.extend_from_slice(b"END\r\n");
                    let mut w = c.stream.try_clone().expect("clone");
                    let sender = std::thread::spawn(move || w.write_all(&req).expect("write"));
                    let got = c.read_exact(want.len());
                    sender.join().expect("sender");
                    assert!(got == want, "client {t} round {i}: reply differs");
                }
            })
        })
        .collect();
    for h in clients {
        h.join().expect("client thread");
    }
}

/// A client whose replies fill its socket and who never reads must not hold
/// up the worker's other connections: a send that would block comes back
/// at once (EAGAIN) rather than waiting in the batch. One worker, so both
/// clients share it.
fn stuck_reader_does_not_block_the_worker(args: &[&str]) {
    let srv = Server::start(args);
    let mut hog = srv.connect();
    let keys = store_4mb(&mut hog, "h");
    // 4 MB of replies the hog never reads, then more requests behind them.
    let get = format!("get {}\r\n", keys.join(" "));
    hog.stream.write_all(get.as_bytes()).expect("write get");
    hog.stream
        .write_all(&b"get h:1\r\n".repeat(200))
        .expect("write more");
    std::thread::sleep(Duration::from_millis(200));
    let mut other = srv.connect();
    other
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for _ in 0..20 {
        let mut want = Vec::new();
        want.extend(value_reply("h:7", &value_for("h:7", 2048)));
        want.extend_from_slice(b"END\r\n");
        other.roundtrip(b"get h:7\r\n", &want);
    }
    drop(hog);
}

#[test]
fn stuck_reader_does_not_block_the_worker_batched() {
    stuck_reader_does_not_block_the_worker(&["-t", "1"]);
}

#[test]
fn stuck_reader_does_not_block_the_worker_one_by_one() {
    let args: &[&str] = if against_memcached() {
        &["-t", "1"]
    } else {
        &["-t", "1", "-o", "no_batch_send"]
    };
    stuck_reader_does_not_block_the_worker(args);
}

/// Once its reply has gone out in the batch, an idle connection no longer
/// shows as parsing a command in `stats conns` (memcrab: conn_waiting,
/// memcached 1.6: conn_read).
#[test]
fn idle_connection_after_a_batched_reply_is_not_shown_parsing() {
    let srv = Server::start(&["-t", "1"]);
    let mut idle = srv.connect();
    idle.roundtrip(b"set st 0 0 1\r\nx\r\n", b"STORED\r\n");
    let port = idle
        .stream
        .local_addr()
        .expect("local addr")
        .port()
        .to_string();
    let mut c = srv.connect();
    std::thread::sleep(Duration::from_millis(50));
    let conns = c.stats("conns");
    // "<fd>:addr" names the idle connection by its port; "<fd>:state" follows.
    let fd = conns
        .iter()
        .find(|(k, v)| k.ends_with(":addr") && v.ends_with(&format!(":{port}")))
        .and_then(|(k, _)| k.split(':').next())
        .expect("the idle connection is listed");
    let state = &conns[&format!("{fd}:state")];
    assert!(!state.contains("conn_parse_cmd"), "idle shows {state}");
}
