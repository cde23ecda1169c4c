//! Listening sockets: `--web.listen-address` (repeatable; `:PORT` is every IPv4 and IPv6
//! address, as in Go) and systemd socket activation (`--web.systemd-socket`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds one `--web.listen-address`: `:PORT` on a dual-stack `[::]` socket (falling back to
/// `0.0.0.0` where IPv6 is unavailable), anything else as given (`HOST:PORT`, `[::1]:PORT`).
/// The listener is non-blocking, ready for tokio.
pub fn bind(address: &str) -> io::Result<TcpListener> {
    let listener = match address.strip_prefix(':') {
        Some(port) => {
            let port: u16 = port.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid port `{port}`, expected :PORT or HOST:PORT"),
                )
            })?;
            match dual_stack(port) {
                Ok(l) => l,
                Err(e) if ipv6_unavailable(&e) => {
                    TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?
                }
                Err(e) => return Err(e),
            }
        }
        None => TcpListener::bind(address)?,
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn dual_stack(port: u16) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// A kernel without IPv6, or with it turned off.
fn ipv6_unavailable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == libc::EAFNOSUPPORT || code == libc::EADDRNOTAVAIL || code == libc::EPROTONOSUPPORT
    )
}

/// The sockets systemd passed (`LISTEN_PID`, `LISTEN_FDS`: descriptors 3, 4, …), as
/// exporter-toolkit's `--web.systemd-socket` takes them.
#[cfg(unix)]
pub fn systemd_sockets() -> io::Result<Vec<TcpListener>> {
    use std::os::fd::FromRawFd;
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let n = passed_fds(pid.as_deref(), fds.as_deref(), std::process::id())?;
    (0..n)
        .map(|i| {
            // SAFETY: systemd hands these descriptors to this process (LISTEN_PID is ours)
            // and nothing else in the process uses them.
            let l = unsafe { TcpListener::from_raw_fd(3 + i as i32) };
            l.set_nonblocking(true)?;
            l.local_addr()?;
            Ok(l)
        })
        .collect()
}

/// How many sockets systemd passed to process `own`.
fn passed_fds(pid: Option<&str>, fds: Option<&str>, own: u32) -> io::Result<u32> {
    let none = |why: &str| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no socket activation file descriptors found ({why})"),
        )
    };
    let pid = pid.ok_or_else(|| none("LISTEN_PID is not set"))?;
    if pid.trim().parse::<u32>().ok() != Some(own) {
        return Err(none("LISTEN_PID is another process"));
    }
    match fds.and_then(|f| f.trim().parse::<u32>().ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(none("LISTEN_FDS is not a positive number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_environment() {
        assert_eq!(passed_fds(Some("42"), Some("2"), 42).unwrap(), 2);
        assert!(passed_fds(Some("41"), Some("2"), 42).is_err());
        assert!(passed_fds(None, Some("2"), 42).is_err());
        assert!(passed_fds(Some("42"), Some("0"), 42).is_err());
        assert!(passed_fds(Some("42"), None, 42).is_err());
    }

    #[test]
    fn bad_ports_are_refused() {
        assert!(bind(":http").is_err());
        assert!(bind(":70000").is_err());
    }
}
