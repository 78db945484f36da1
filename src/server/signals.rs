//! SIGINT/SIGTERM: a classic self-pipe. The handler only writes one byte to
//! a non-blocking pipe (async-signal-safe); the acceptor's event loop polls
//! the read end and starts a graceful shutdown. SIGPIPE is ignored so a
//! peer that vanishes mid-write gives EPIPE instead of killing the process;
//! SIGHUP and SIGUSR1 are ignored like memcached does without `-e`.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        unsafe {
            libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
        }
    }
}

/// Read end of the signal pipe; readable once a stop signal arrived.
pub struct SignalPipe {
    read_fd: RawFd,
}

impl SignalPipe {
    /// Installs the handlers for SIGINT and SIGTERM and ignores SIGPIPE.
    pub fn install() -> io::Result<SignalPipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: plain syscalls on fds we own; the handler is a valid extern fn.
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) != 0 {
                return Err(io::Error::last_os_error());
            }
            WRITE_FD.store(fds[1], Ordering::Relaxed);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            for sig in [libc::SIGINT, libc::SIGTERM] {
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // memcached survives SIGHUP and (without -e) SIGUSR1; so do we.
            for sig in [libc::SIGPIPE, libc::SIGHUP, libc::SIGUSR1] {
                libc::signal(sig, libc::SIG_IGN);
            }
        }
        Ok(SignalPipe { read_fd: fds[0] })
    }

    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// Empties the pipe; true if a signal had arrived.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut got = false;
        loop {
            // SAFETY: reading into a local buffer from our own fd.
            let n = unsafe {
                libc::read(
                    self.read_fd,
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n <= 0 {
                return got;
            }
            got = true;
        }
    }
}
