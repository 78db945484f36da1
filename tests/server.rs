//! Socket-level tests of the server layer: connection limit, idle timeout,
//! signals, usage errors, unix sockets, spreading connections over
//! workers, pipelining and bounded memory for clients that do not read.
//!
//! Requests are `version\r\n`: every reply is one line whatever protocol
//! layer is in place, so these tests check framing and buffering, not
//! command semantics (those live with the protocol tests).
mod common;

use common::{against_memcached, Conn, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_memcrab");

/// What one read with a short timeout saw.
#[derive(Debug, PartialEq)]
enum Peek {
    Data(String),
    Eof,
    Nothing,
}

/// One read straight from the socket (use only when nothing is buffered).
fn peek(c: &mut Conn, t: Duration) -> Peek {
    c.stream.set_read_timeout(Some(t)).unwrap();
    let mut buf = [0u8; 4096];
    let r = match c.stream.read(&mut buf) {
        Ok(0) => Peek::Eof,
        Ok(n) => Peek::Data(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Peek::Eof,
        Err(_) => Peek::Nothing,
    };
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    r
}

/// Reads one reply line and checks it is a `version` answer (or the
/// placeholder protocol's ERROR before the text protocol landed).
fn expect_version_reply(c: &mut Conn) {
    let l = c.read_line();
    assert!(
        l.starts_with("VERSION ") || l == "ERROR\r\n",
        "unexpected reply {l:?}"
    );
}

#[test]
fn pipelined_requests_in_one_write_all_answered() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(&b"version\r\n".repeat(1000));
    for _ in 0..1000 {
        expect_version_reply(&mut c);
    }
    // Still usable afterwards.
    c.send(b"version\r\n");
    expect_version_reply(&mut c);
}

#[test]
fn worker_yield_setting_changes_no_replies() {
    // `-o worker_yield_us` is memcrab's own (memcached refuses it): yielding
    // on (almost) every loop turn, or never, must answer every request of
    // several busy connections sharing one worker, in order.
    if against_memcached() {
        return;
    }
    for setting in ["worker_yield_us=1", "worker_yield_us=0"] {
        let s = Server::start(&["-t", "1", "-o", setting]);
        let mut conns: Vec<Conn> = (0..4).map(|_| s.connect()).collect();
        for c in conns.iter_mut() {
            c.send(&b"version\r\n".repeat(2000));
        }
        for c in conns.iter_mut() {
            for _ in 0..2000 {
                expect_version_reply(c);
            }
            c.send(b"set k 0 0 1\r\nx\r\n");
            assert_eq!(c.read_line(), "STORED\r\n", "{setting}");
        }
    }
}

#[test]
fn byte_at_a_time_requests() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    for _ in 0..3 {
        for b in b"version\r\n" {
            c.send(&[*b]);
            std::thread::sleep(Duration::from_millis(2));
        }
        expect_version_reply(&mut c);
    }
}

#[test]
fn requests_after_peer_half_close_are_answered() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(b"version\r\nversion\r\n");
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    expect_version_reply(&mut c);
    expect_version_reply(&mut c);
    assert!(c.is_closed());
}

#[test]
fn connection_limit_rejects_with_error_line() {
    if against_memcached() {
        return; // memcached counts reserved fds, so its threshold differs
    }
    let s = Server::start(&["-c", "2"]);
    // The harness's readiness probe may still hold a slot for a moment.
    let mut a = connect_accepted(&s);
    let mut b = connect_accepted(&s);
    a.send(b"version\r\n");
    expect_version_reply(&mut a);
    b.send(b"version\r\n");
    expect_version_reply(&mut b);
    let mut over = s.connect();
    assert_eq!(over.read_line(), "ERROR Too many open connections\r\n");
    assert!(over.is_closed());
    // A freed slot is usable again.
    drop(a);
    let mut c = connect_accepted(&s);
    c.send(b"version\r\n");
    expect_version_reply(&mut c);
}

/// Connects, retrying while the server answers "Too many open connections".
fn connect_accepted(s: &Server) -> Conn {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = s.connect();
        match peek(&mut c, Duration::from_millis(300)) {
            Peek::Nothing => return c,
            Peek::Data(l) if l.starts_with("ERROR Too many") => {
                assert!(Instant::now() < deadline, "no slot freed");
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("unexpected greeting {other:?}"),
        }
    }
}

#[test]
fn idle_timeout_closes_idle_connections_only() {
    let s = Server::start(&["-o", "idle_timeout=1"]);
    let mut idle = s.connect();
    let mut busy = s.connect();
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(6) {
        busy.send(b"version\r\n");
        expect_version_reply(&mut busy);
        match peek(&mut idle, Duration::from_millis(300)) {
            Peek::Eof => {
                closed = true;
                break;
            }
            Peek::Data(d) => panic!("idle connection got {d:?}"),
            Peek::Nothing => {}
        }
    }
    assert!(closed, "idle connection was not closed within 6 s");
    busy.send(b"version\r\n");
    expect_version_reply(&mut busy);
    let kicks: u64 = busy.stats("")["idle_kicks"].parse().unwrap();
    assert!(kicks >= 1, "idle_kicks {kicks}");
}

#[test]
fn no_maxconns_fast_queues_connections_beyond_the_limit() {
    if against_memcached() {
        return; // memcached's limit counts reserved fds
    }
    let s = Server::start(&["-c", "2", "-o", "no_maxconns_fast"]);
    let mut a = s.connect();
    a.send(b"version\r\n");
    expect_version_reply(&mut a);
    let mut b = s.connect();
    b.send(b"version\r\n");
    expect_version_reply(&mut b);
    // The third waits in the backlog: no reply, no rejection.
    let mut c = s.connect();
    c.send(b"version\r\n");
    assert_eq!(peek(&mut c, Duration::from_millis(500)), Peek::Nothing);
    drop(a);
    expect_version_reply(&mut c);
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    for sig in ["TERM", "INT"] {
        let mut s = Server::start(&[]);
        let mut c = s.connect();
        c.send(b"version\r\n");
        expect_version_reply(&mut c);
        s.signal(sig);
        assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0), "SIG{sig}");
        assert!(c.is_closed(), "connection closed on SIG{sig}");
    }
}

#[test]
fn bad_flags_exit_64_with_a_message() {
    if against_memcached() {
        return; // memcached exits 1 for several of these
    }
    let cases: &[&[&str]] = &[
        &["-t", "0"],
        &["-I", "1000"],
        &["-I", "2000m"],
        &["-B", "http"],
        &["-p", "abc"],
        &["-p", "70000"],
        &["-m", "abc"],
        &["-c", "0"],
        &["--bogus"],
        &["-Q"],
        &["-o", "bogus"],
        &["-o", "idle_timeout=x"],
        &["-o", "hot_lru_pct=95"],
        &["-f", "0.5"],
    ];
    for args in cases {
        let out = Command::new(BIN)
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .expect("run memcrab");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: stderr {err}");
        assert!(!err.trim().is_empty(), "{args:?}: no message");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn help_and_version_exit_zero() {
    let out = Command::new(BIN).arg("-V").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.6."));
    let out = Command::new(BIN).arg("-h").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-p, --port"));
}

#[test]
fn unix_socket_with_mask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    if against_memcached() {
        return;
    }
    let path = std::env::temp_dir().join(format!("memcrab-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(BIN)
        .args(["-s", path.to_str().unwrap(), "-a", "600", "-t", "2"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&path) {
            break s;
        }
        assert!(Instant::now() < deadline, "unix socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    w.write_all(&b"version\r\n".repeat(10)).unwrap();
    let mut got = Vec::new();
    let mut r = stream;
    let mut buf = [0u8; 4096];
    while got.iter().filter(|&&b| b == b'\n').count() < 10 {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    // SIGTERM removes the socket file and exits 0.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!path.exists(), "socket file left behind");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Per-thread CPU time (ns) of the server's worker threads, from schedstat.
fn worker_runtimes(pid: u32) -> Vec<u64> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for t in dir.flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !comm.starts_with("worker-") {
            continue;
        }
        let ss = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        v.push(
            ss.split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0),
        );
    }
    v
}

#[test]
fn many_connections_spread_across_workers() {
    if against_memcached() {
        return;
    }
    let s = Server::start(&["-t", "4"]);
    let before = worker_runtimes(s.pid());
    assert_eq!(before.len(), 4, "expected 4 worker threads");
    let mut conns: Vec<Conn> = (0..64).map(|_| s.connect()).collect();
    for _round in 0..5 {
        for c in conns.iter_mut() {
            c.send(&b"version\r\n".repeat(200));
        }
        for c in conns.iter_mut() {
            for _ in 0..200 {
                expect_version_reply(c);
            }
        }
    }
    let after = worker_runtimes(s.pid());
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        assert!(a > b, "worker {i} did no work: {b} -> {a}");
    }
}

#[test]
fn client_that_does_not_read_keeps_memory_bounded() {
    let s = Server::start(&["-t", "2"]);
    let base = s.rss_kib();
    let stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut w = stream.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    const TOTAL: usize = 50 << 20;
    let chunk = b"version\r\n".repeat(7000); // 63,000 bytes
    let lines_per_chunk = 7000;
    let chunks = TOTAL / chunk.len();
    // Write until the server stops taking bytes (it must stop reading).
    let mut sent_chunks = 0usize;
    let mut partial = 0usize;
    let start = Instant::now();
    while sent_chunks < chunks && start.elapsed() < Duration::from_secs(30) {
        match w.write(&chunk[partial..]) {
            Ok(n) => {
                partial += n;
                if partial == chunk.len() {
                    partial = 0;
                    sent_chunks += 1;
                }
            }
            Err(_) => break, // blocked: back-pressure reached us
        }
    }
    assert!(
        sent_chunks < chunks,
        "server kept reading 50 MB although the client never read"
    );
    std::thread::sleep(Duration::from_millis(300));
    let blocked = s.rss_kib();
    assert!(
        blocked < base + 32 * 1024,
        "RSS grew from {base} KiB to {blocked} KiB"
    );
    // Now read: the connection recovers and every request is answered.
    let reader_stream = stream.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut c = Conn::new(reader_stream);
        let mut lines = 0usize;
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 1 << 16];
        loop {
            match c.stream.read(&mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&tmp[..n]);
                    lines += buf.iter().filter(|&&b| b == b'\n').count();
                    let last = buf.iter().rposition(|&b| b == b'\n');
                    if let Some(p) = last {
                        assert!(
                            buf.starts_with(b"VERSION ") || buf.starts_with(b"ERROR"),
                            "bad reply"
                        );
                        buf.drain(..=p);
                    }
                }
            }
        }
        lines
    });
    w.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    if partial > 0 {
        w.write_all(&chunk[partial..]).unwrap();
        sent_chunks += 1;
    }
    while sent_chunks < chunks {
        w.write_all(&chunk).unwrap();
        sent_chunks += 1;
    }
    w.shutdown(std::net::Shutdown::Write).unwrap();
    let lines = reader.join().unwrap();
    assert_eq!(lines, chunks * lines_per_chunk);
    let end = s.rss_kib();
    assert!(
        end < base + 32 * 1024,
        "RSS grew from {base} KiB to {end} KiB"
    );
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// Sends one UDP request and reassembles the reply by sequence number.
fn udp_request(sock: &std::net::UdpSocket, port: u16, rid: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&rid.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
    d.extend_from_slice(payload);
    sock.send_to(&d, ("127.0.0.1", port)).unwrap();
    let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("udp reply");
        assert!((8..=1400).contains(&n), "datagram of {n} bytes");
        assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), rid);
        let seq = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        let total = u16::from_be_bytes([buf[4], buf[5]]) as usize;
        if parts.is_empty() {
            parts = vec![None; total];
        }
        parts[seq] = Some(buf[8..n].to_vec());
        if parts.iter().all(Option::is_some) {
            return parts.into_iter().flatten().flatten().collect();
        }
    }
}

#[test]
fn udp_get_and_set_with_memcached_framing() {
    let port = free_udp_port();
    let s = Server::start(&["-U", &port.to_string(), "-t", "2"]);
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = Vec::new();
    // The server may need a moment to bind UDP after TCP is up.
    for attempt in 0..20u16 {
        u.set_read_timeout(Some(Duration::from_millis(250)))
            .unwrap();
        let mut d = attempt.to_be_bytes().to_vec();
        d.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        d.extend_from_slice(b"set small 5 0 3\r\nabc\r\n");
        u.send_to(&d, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = u.recv_from(&mut buf) {
            reply = buf[8..n].to_vec();
            break;
        }
    }
    assert_eq!(reply, b"STORED\r\n");
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        udp_request(&u, port, 100, b"get small\r\n"),
        b"VALUE small 5 3\r\nabc\r\nEND\r\n"
    );
    // A reply spanning several datagrams.
    let big = vec![b'x'; 5000];
    let mut set = b"set big 0 0 5000\r\n".to_vec();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\n");
    assert_eq!(udp_request(&u, port, 101, &set), b"STORED\r\n");
    let mut want = b"VALUE big 0 5000\r\n".to_vec();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\r\nEND\r\n");
    assert_eq!(udp_request(&u, port, 102, b"get big\r\n"), want);
    // TCP sees what UDP stored.
    let mut c = s.connect();
    c.roundtrip(b"get small\r\n", b"VALUE small 5 3\r\nabc\r\nEND\r\n");
    // Like memcached, each of the 2 threads' UDP sockets is a connection.
    let st = c.stats_when("", Duration::from_secs(5), |st| {
        st["curr_connections"] == "3"
    });
    assert_eq!(st["curr_connections"], "3", "curr_connections never 3");
    c.send(b"stats conns\r\n");
    let mut udp_rows = 0;
    loop {
        let l = c.read_line();
        if l == "END\r\n" {
            break;
        }
        if l.ends_with(":UDP UDP\r\n") {
            udp_rows += 1;
        }
    }
    assert_eq!(udp_rows, 2);
}

#[test]
fn stats_conns_rows_like_memcached() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(b"stats conns\r\n");
    let mut rows = Vec::new();
    loop {
        let l = c.read_line();
        if l == "END\r\n" {
            break;
        }
        rows.push(l.trim_end().to_string());
    }
    let listen = format!("tcp:127.0.0.1:{}", s.port);
    assert!(rows.iter().any(|r| r.ends_with(&format!(":addr {listen}"))));
    assert!(rows.iter().any(|r| r.ends_with(":state conn_listening")));
    assert!(rows
        .iter()
        .any(|r| r.ends_with(&format!(":listen_addr {listen}"))));
    assert!(rows.iter().any(|r| r.ends_with(":state conn_parse_cmd")));
    for r in &rows {
        let parts: Vec<&str> = r.splitn(3, ' ').collect();
        assert_eq!(parts[0], "STAT", "{r}");
        let (fd, name) = parts[1].split_once(':').expect("fd:name");
        assert!(fd.parse::<u32>().is_ok(), "{r}");
        assert!(
            ["addr", "listen_addr", "state", "secs_since_last_cmd"].contains(&name),
            "{r}"
        );
    }
}

#[test]
fn connection_counters_match_memcached() {
    let s = Server::start(&[]);
    let mut c = connect_settled(&s);
    let st = c.stats("");
    // One listener and this client: memcached 1.6.18 shows 1 / 2 / 2.
    assert_eq!(st["curr_connections"], "1");
    let total: u64 = st["total_connections"].parse().unwrap();
    assert!(total >= 2, "total_connections {total}");
    assert_eq!(st["rejected_connections"], "0");
    let mut d = s.connect();
    d.send(b"version\r\n");
    d.read_line();
    // The harness's probe may be accepted late and counted meanwhile, so
    // wait for the counts to settle instead of reading them once.
    let st = c.stats_when("", Duration::from_secs(5), |st| {
        st["curr_connections"] == "2"
    });
    assert_eq!(st["curr_connections"], "2");
    assert!(st["total_connections"].parse::<u64>().unwrap() > total);
}

/// Connects once the harness's readiness probe has been closed server-side.
fn connect_settled(s: &Server) -> Conn {
    let mut c = s.connect();
    c.stats_when("", Duration::from_secs(5), |st| {
        st["curr_connections"] == "1"
    });
    c
}

#[test]
fn shutdown_command_exits_zero() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.connect();
    c.send(b"shutdown\r\n");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn reqs_per_event_yields_are_counted() {
    let s = Server::start(&["-R", "5", "-t", "1"]);
    let mut c = s.connect();
    // 100 requests in one segment: the server yields every 5.
    c.send(&b"version\r\n".repeat(100));
    for _ in 0..100 {
        expect_version_reply(&mut c);
    }
    let yields: u64 = c.stats("")["conn_yields"].parse().unwrap();
    assert!(yields >= 1, "conn_yields {yields}");
}

#[test]
fn large_values_cross_buffer_growth_and_shrink() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let len = (1 << 20) - 512;
    let value: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = format!("set big 0 0 {len}\r\n").into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    // Dribble the request so the read buffer grows step by step.
    for chunk in req.chunks(7000) {
        c.send(chunk);
    }
    assert_eq!(c.read_line(), "STORED\r\n");
    let mut want = format!("VALUE big 0 {len}\r\n").into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\nEND\r\n");
    // Ten pipelined gets of a 1 MB value: output beyond the limit waits.
    c.send(&b"get big\r\n".repeat(10));
    for _ in 0..10 {
        assert!(c.read_exact(want.len()) == want, "value corrupted");
    }
    // Small requests still work after the buffers shrank back.
    c.send(b"version\r\n");
    expect_version_reply(&mut c);
}

#[test]
fn listens_on_ipv6_and_host_port_entries() {
    let Ok(l6) = std::net::TcpListener::bind("[::1]:0") else {
        return; // no IPv6 on this host
    };
    let p6 = l6.local_addr().unwrap().port();
    drop(l6);
    let l4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p4 = l4.local_addr().unwrap().port();
    drop(l4);
    // The harness adds -l 127.0.0.1 on its own port; these come on top.
    let s = Server::start(&["-l", &format!("[::1]:{p6},127.0.0.1:{p4}")]);
    let _ = s.port;
    for addr in [format!("[::1]:{p6}"), format!("127.0.0.1:{p4}")] {
        let stream = TcpStream::connect(&addr).expect(&addr);
        let mut c = Conn::new(stream);
        c.send(b"version\r\n");
        expect_version_reply(&mut c);
    }
}

#[test]
fn connection_churn_leaves_counters_balanced() {
    let s = Server::start(&["-t", "3"]);
    let port = s.port;
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut st = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    match (t + i) % 4 {
                        // a partial line, then gone
                        0 => st.write_all(b"get some_ke").unwrap(),
                        // a set whose data block never completes
                        1 => st.write_all(b"set k 0 0 100\r\nabc").unwrap(),
                        // pipelined requests, replies never read
                        2 => st.write_all(&b"version\r\n".repeat(500)).unwrap(),
                        // a full exchange
                        _ => {
                            st.write_all(b"version\r\n").unwrap();
                            let mut b = [0u8; 64];
                            let _ = st.read(&mut b).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = s.connect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = c.stats("");
        if st["curr_connections"] == "1" {
            let total: u64 = st["total_connections"].parse().unwrap();
            assert!(total > 8 * 40, "total_connections {total}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "curr_connections stuck at {}",
            st["curr_connections"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_mode_writes_and_removes_pid_file() {
    if against_memcached() {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let pidfile = std::env::temp_dir().join(format!("memcrab-test-{port}.pid"));
    let status = Command::new(BIN)
        .args(["-d", "-P", pidfile.to_str().unwrap(), "-U", "0"])
        .args(["-l", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the foreground process exits 0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stream = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon not listening");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut c = Conn::new(stream);
    c.send(b"version\r\n");
    expect_version_reply(&mut c);
    // The daemon is our own grandchild; stop it by the pid it wrote.
    unsafe { libc_kill(pid, 15) };
    assert!(c.is_closed());
    while pidfile.exists() {
        assert!(Instant::now() < deadline, "pid file left behind");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unread_large_replies_stop_reading_and_keep_memory_bounded() {
    let s = Server::start(&["-t", "1"]);
    let mut c = s.connect();
    let value = vec![b'v'; 100 * 1024];
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    c.roundtrip(&set, b"STORED\r\n");
    let base = s.rss_kib();
    // Each 9-byte request asks for 100 KB; write until the server stops
    // taking requests (bounded by a byte budget and a time limit).
    let mut w = c.stream.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = b"get big\r\n".repeat(1000);
    let mut sent = 0usize;
    let start = Instant::now();
    while sent < (64 << 20) && start.elapsed() < Duration::from_secs(20) {
        match w.write(&req) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        sent < (64 << 20),
        "server kept reading requests it could not answer"
    );
    std::thread::sleep(Duration::from_millis(300));
    let rss = s.rss_kib();
    assert!(
        rss < base + 48 * 1024,
        "RSS grew from {base} KiB to {rss} KiB"
    );
    // Replies are intact when the client finally reads.
    let mut want = format!("VALUE big 0 {}\r\n", value.len()).into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\nEND\r\n");
    for _ in 0..5 {
        assert!(c.read_exact(want.len()) == want, "reply corrupted");
    }
}
