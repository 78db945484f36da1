//! Batched sends: the replies of every connection served in one pass of a
//! worker's event loop go to the kernel in one `io_uring_enter`, not one
//! `send` each (`-o no_batch_send` turns this off).
//!
//! Why: at low pipelining depth nearly all of a request's cost is the
//! kernel's, and each `send` wakes the client it answers. On a shared core
//! that client preempts the worker as the `send` returns, so a worker with
//! N ready connections paid N context-switch round trips per pass.
//! Submitted together, the sends run inside one system call, the worker is
//! preempted at most once per pass, and clients woken together find several
//! replies per wakeup.
//!
//! Every send is non-blocking (`MSG_DONTWAIT`, which io_uring reports as
//! `EAGAIN` instead of parking the request until the socket drains), so
//! each completes during `io_uring_enter`; we still wait for every
//! completion before returning, because the kernel reads the connections'
//! output buffers until then.

use io_uring::{opcode, types, IoUring, Probe};
use std::io;

/// Sends submitted per `io_uring_enter` at most.
const RING: u32 = 256;
/// `io_uring_enter` failures (other than EINTR), 1 ms apart, before giving up.
const MAX_ENTER_FAILURES: u32 = 1000;

pub struct BatchSender {
    ring: IoUring,
}

impl BatchSender {
    /// A ring, or `None` where io_uring or its send operation is unavailable
    /// (old kernel, seccomp filter, `kernel.io_uring_disabled`): the worker
    /// then sends each reply itself.
    pub fn new() -> Option<BatchSender> {
        let ring = match IoUring::new(RING) {
            Ok(r) => r,
            Err(e) => {
                log::info!("io_uring unavailable ({e}); replies are sent one by one");
                return None;
            }
        };
        let mut probe = Probe::new();
        if ring.submitter().register_probe(&mut probe).is_err()
            || !probe.is_supported(opcode::Send::CODE)
        {
            log::info!("io_uring has no send operation; replies are sent one by one");
            return None;
        }
        Some(BatchSender { ring })
    }

    /// For each id in `ids` that `data_of` maps to `(socket, bytes)` with
    /// bytes to send, sends them and reports the result, in any order, as
    /// `(id, bytes sent or error)`. Returns once all are done. (A lookup
    /// rather than a list of sends, so a pass needs no allocation.)
    pub fn send_all<'a>(
        &mut self,
        ids: &[usize],
        data_of: impl Fn(usize) -> Option<(i32, &'a [u8])>,
        mut done: impl FnMut(usize, io::Result<usize>),
    ) {
        for chunk in ids.chunks(RING as usize) {
            let mut left = 0;
            {
                let mut sq = self.ring.submission();
                for &id in chunk {
                    let Some((fd, data)) = data_of(id).filter(|(_, d)| !d.is_empty()) else {
                        continue;
                    };
                    let len = data.len().min(u32::MAX as usize) as u32;
                    let sqe = opcode::Send::new(types::Fd(fd), data.as_ptr(), len)
                        .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(id as u64);
                    // SAFETY: `data` stays valid until its completion is
                    // reaped below.
                    if unsafe { sq.push(&sqe) }.is_ok() {
                        left += 1;
                    } else {
                        // Cannot happen (the last call drained the queue and
                        // a chunk fits it); if it did, the caller retries
                        // this one itself, as after EINTR.
                        done(id, Err(io::ErrorKind::Interrupted.into()));
                    }
                }
            }
            let mut failures = 0;
            while left > 0 {
                if let Err(e) = self.ring.submit_and_wait(left) {
                    // EINTR, or EAGAIN/EBUSY under memory or completion
                    // pressure: retry. The requests still point into live
                    // buffers, so returning early is not an option.
                    if e.kind() != io::ErrorKind::Interrupted {
                        failures += 1;
                        log::warn!("io_uring_enter: {e}");
                        if failures >= MAX_ENTER_FAILURES {
                            log::error!("io_uring_enter keeps failing; aborting");
                            std::process::abort();
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                for cqe in self.ring.completion() {
                    let id = cqe.user_data() as usize;
                    let r = cqe.result();
                    let res = if r >= 0 {
                        Ok(r as usize)
                    } else {
                        Err(io::Error::from_raw_os_error(-r))
                    };
                    done(id, res);
                    left -= 1;
                }
            }
        }
    }
}
