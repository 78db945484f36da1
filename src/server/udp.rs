//! memcached's UDP transport (`-U`): every datagram starts with an 8-byte
//! header (request id, sequence number, datagram count, reserved; big
//! endian). A request must fit in one datagram (others are dropped, as
//! memcached does); the reply is split into datagrams of at most 1,400
//! bytes, each with the request id, its sequence number and the count.
//! Each datagram is handled on its own: a data block cut short answers
//! `CLIENT_ERROR bad data chunk`.

use crate::command::{Ctx, Shared};
use crate::protocol::{self, Session};
use crate::stats::WorkerStats;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const HEADER: usize = 8;
/// memcached's UDP_MAX_PAYLOAD_SIZE: whole datagram, header included.
const MAX_DATAGRAM: usize = 1400;
const CHUNK: usize = MAX_DATAGRAM - HEADER;
/// The longest reply that can be numbered (a 16-bit datagram count). A
/// multi-get pauses past it; such a reply is dropped, never built in full.
const MAX_REPLY: usize = u16::MAX as usize * CHUNK;
/// Reply buffer capacity kept between datagrams.
const OUT_KEEP: usize = 64 * 1024;

/// Binds the UDP sockets: `-U` port on every `-l` host (all interfaces by default).
pub fn bind_all(c: &crate::config::Config) -> io::Result<Vec<UdpSocket>> {
    let mut out = Vec::new();
    if c.udp_port == 0 || c.unix_socket.is_some() {
        return Ok(out);
    }
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut optional_v6 = false;
    if c.listen.is_empty() {
        addrs.push(SocketAddr::from(([0, 0, 0, 0], c.udp_port)));
        addrs.push(SocketAddr::from(([0u16; 8], c.udp_port)));
        optional_v6 = true; // hosts without IPv6 still start
    } else {
        for entry in &c.listen {
            let (host, _) = super::listener::split_host_port(entry, c.udp_port)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let found: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, c.udp_port)],
                Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, c.udp_port))?.collect(),
            };
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
    }
    for a in addrs {
        match bind_one(a) {
            Ok(s) => out.push(s),
            Err(e) if optional_v6 && a.is_ipv6() => log::info!("not listening on udp {a}: {e}"),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("failed to listen on UDP port {}: {e}", a.port()),
                ))
            }
        }
    }
    Ok(out)
}

fn bind_one(a: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(a), Type::DGRAM, Some(Protocol::UDP))?;
    if a.is_ipv6() {
        sock.set_only_v6(true)?; // the IPv4 socket serves IPv4
    }
    sock.bind(&a.into())?;
    let s: UdpSocket = sock.into();
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

/// Serves one UDP socket until `stop` is set.
pub fn serve(sock: UdpSocket, shared: Arc<Shared>, stats: Arc<WorkerStats>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(64 * 1024);
    let mut dgram = Vec::with_capacity(MAX_DATAGRAM);
    let ctx = Ctx {
        shared: &shared,
        stats: &stats,
    };
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                log::warn!("UDP receive failed: {e}");
                continue;
            }
        };
        stats.bytes_read.add(n as u64);
        if n < HEADER {
            continue;
        }
        let rid = [buf[0], buf[1]];
        let total = u16::from_be_bytes([buf[4], buf[5]]);
        if total != 1 {
            continue; // multi-datagram requests are not supported (memcached drops them)
        }
        out.clear();
        let payload = &buf[HEADER..n];
        let mut session = Session::default();
        let p = protocol::process(&mut session, payload, &mut out, &ctx, MAX_REPLY);
        if p.yielded || out.len() > MAX_REPLY {
            // memcached could not number it either; free the big buffer.
            out = Vec::with_capacity(OUT_KEEP);
            continue;
        }
        if p.consumed < payload.len() && !p.close {
            out.extend_from_slice(b"CLIENT_ERROR bad data chunk\r\n");
        }
        if out.is_empty() {
            continue;
        }
        let count = out.len().div_ceil(CHUNK);
        for (seq, chunk) in out.chunks(CHUNK).enumerate() {
            dgram.clear();
            dgram.extend_from_slice(&rid);
            dgram.extend_from_slice(&(seq as u16).to_be_bytes());
            dgram.extend_from_slice(&(count as u16).to_be_bytes());
            dgram.extend_from_slice(&[0, 0]);
            dgram.extend_from_slice(chunk);
            if let Ok(w) = sock.send_to(&dgram, peer) {
                stats.bytes_written.add(w as u64);
            }
        }
        if out.capacity() > 16 * OUT_KEEP {
            out = Vec::with_capacity(OUT_KEEP); // do not keep a huge reply's buffer
        }
    }
}
