//! Listening sockets: TCP on every `-l` address (IPv4 and IPv6, optional
//! `:port`, `-b` backlog via socket2) or a unix socket (`-s`, mode `-a`),
//! and the accepted-socket type handed from the acceptor to the workers.

use crate::config::Config;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// A bound, non-blocking listener and its name as `stats conns` prints it.
pub enum Listener {
    Tcp(mio::net::TcpListener, String),
    Unix(mio::net::UnixListener, String),
}

impl Listener {
    pub fn name(&self) -> &str {
        match self {
            Listener::Tcp(_, n) | Listener::Unix(_, n) => n,
        }
    }
}

/// An accepted connection on its way to a worker.
pub enum Accepted {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

/// Splits one `-l` entry into host and port: `host`, `host:port`,
/// `[v6]`, `[v6]:port`, or a bare IPv6 literal.
pub fn split_host_port(entry: &str, default_port: u16) -> Result<(String, u16), String> {
    let entry = entry.strip_prefix("notls:").unwrap_or(entry);
    let bad = || format!("bad -l address \"{entry}\"");
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_string(), port));
    }
    match entry.matches(':').count() {
        0 => Ok((entry.to_string(), default_port)),
        1 => {
            let (h, p) = entry.split_once(':').ok_or_else(bad)?;
            Ok((h.to_string(), p.parse().map_err(|_| bad())?))
        }
        _ => Ok((entry.to_string(), default_port)), // bare IPv6 literal
    }
}

fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok((host, port).to_socket_addrs()?.collect())
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    // Like memcached: accepted sockets inherit keepalive, so dead peers go away.
    let _ = sock.set_keepalive(true);
    if addr.is_ipv6() {
        // One socket per family, like memcached's getaddrinfo loop.
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog.max(1))?;
    Ok(sock.into())
}

/// Binds every listener the configuration asks for.
pub fn bind_all(c: &Config) -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    if let Some(path) = &c.unix_socket {
        // memcached: -s disables network support.
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                let _ = std::fs::remove_file(path);
            }
        }
        let l = std::os::unix::net::UnixListener::bind(path)
            .map_err(|e| io::Error::new(e.kind(), format!("failed to listen on {path}: {e}")))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(c.unix_mask & 0o777))?;
        l.set_nonblocking(true)?;
        out.push(Listener::Unix(
            mio::net::UnixListener::from_std(l),
            format!("unix:{path}"),
        ));
        return Ok(out);
    }
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut optional_v6 = false;
    if c.listen.is_empty() {
        addrs.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), c.port));
        addrs.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), c.port));
        optional_v6 = true; // hosts without IPv6 still start
    } else {
        for entry in &c.listen {
            let (host, port) = split_host_port(entry, c.port)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let found = resolve(&host, port)
                .map_err(|e| io::Error::new(e.kind(), format!("getaddrinfo(\"{host}\"): {e}")))?;
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
    }
    for addr in addrs {
        match bind_tcp(addr, c.backlog) {
            Ok(l) => {
                let local = l.local_addr().unwrap_or(addr);
                out.push(Listener::Tcp(
                    mio::net::TcpListener::from_std(l),
                    format!("tcp:{local}"),
                ));
            }
            Err(e) if optional_v6 && addr.is_ipv6() => {
                log::info!("not listening on {addr}: {e}");
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("failed to listen on TCP port {}: {e}", addr.port()),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn listen_entries() {
        let p = |s| split_host_port(s, 11211);
        assert_eq!(p("127.0.0.1"), Ok(("127.0.0.1".into(), 11211)));
        assert_eq!(p("127.0.0.1:99"), Ok(("127.0.0.1".into(), 99)));
        assert_eq!(p("::1"), Ok(("::1".into(), 11211)));
        assert_eq!(p("[::1]:5"), Ok(("::1".into(), 5)));
        assert_eq!(p("[::1]"), Ok(("::1".into(), 11211)));
        assert_eq!(p("notls:localhost:7"), Ok(("localhost".into(), 7)));
        assert!(p("[::1").is_err());
        assert!(p("h:x").is_err());
    }
}
