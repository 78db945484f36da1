//! Reply output: the connection's output buffer, plus an optional way to
//! hand borrowed value bytes to the socket "right now".
//!
//! Replies are appended to a byte buffer the server writes out later. A
//! large value would be copied into that buffer (under the item's stripe
//! lock) and then copied again by the kernel; when the server offers a
//! [`DirectWrite`], [`Out::put_value`] instead writes the buffer's unsent
//! bytes followed by the value pieces (still borrowed from the item, whose
//! lock the caller holds) with one vectored write, and appends only what
//! the socket did not take. So ordering and back-pressure stay those of the
//! buffer, and correctness never depends on how much the socket accepts.
//! Without a direct writer (UDP, unit tests) everything is buffered.

use std::io::IoSlice;
use std::ops::{Deref, DerefMut};

/// Values at least this long go to the direct writer when there is one:
/// copying them costs more than the extra `writev` (a loopback send costs
/// several µs) when more replies follow in the same batch.
pub const DIRECT_MIN: usize = 64 * 1024;

/// Values at least this long go to the direct writer when their reply is
/// the last output of the batch (no input left after the request): the
/// `writev` then replaces the flush that would follow anyway, so there is
/// no extra syscall and the copy is pure saving.
pub const DIRECT_LAST_MIN: usize = 16 * 1024;

/// Most pieces one direct write carries (Linux `IOV_MAX` is 1024).
const MAX_IOV: usize = 512;

/// Writes bytes without blocking: implemented by the server over its
/// non-blocking socket (protocol code never sees the socket itself).
pub trait DirectWrite {
    /// Writes a prefix of `bufs`, as much as the peer takes without
    /// blocking, and returns its length. 0 when the socket would block or
    /// failed; a failure shows up again on the server's next write.
    fn write_now(&mut self, bufs: &[IoSlice<'_>]) -> usize;
}

/// The reply buffer of one `process` call. Derefs to the `Vec<u8>` it
/// wraps, so replies are appended as to any buffer; the first
/// [`Out::sent`] bytes have already been written by the direct writer
/// (nobody may truncate below that: a request whose reply may be taken
/// back does not use [`Out::put_value`]'s direct path).
pub struct Out<'a> {
    buf: &'a mut Vec<u8>,
    direct: Option<&'a mut dyn DirectWrite>,
    sent: usize,
    /// A direct write came back short: the socket is full, so further
    /// attempts in this call would only cost a syscall.
    blocked: bool,
    /// More input follows the request being handled (set by `process`).
    pub more_input: bool,
}

impl<'a> Out<'a> {
    /// Everything goes to `buf`.
    pub fn buffered(buf: &'a mut Vec<u8>) -> Out<'a> {
        Out {
            buf,
            direct: None,
            sent: 0,
            blocked: false,
            more_input: false,
        }
    }

    /// Large values may go to `direct`; `buf[..sent]` is already written.
    pub fn with_direct(
        buf: &'a mut Vec<u8>,
        sent: usize,
        direct: &'a mut dyn DirectWrite,
    ) -> Out<'a> {
        Out {
            buf,
            direct: Some(direct),
            sent,
            blocked: false,
            more_input: false,
        }
    }

    /// Bytes at the front of the buffer already written to the peer.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Would a value of `len` bytes go to the direct writer (if the socket
    /// takes it)? `last`: nothing more of this request's reply follows it.
    /// Callers that may still take the reply back check this.
    pub fn wants_direct(&self, len: usize, last: bool) -> bool {
        self.direct.is_some()
            && !self.blocked
            && (len >= DIRECT_MIN || (len >= DIRECT_LAST_MIN && last && !self.more_input))
    }

    /// Appends a value (its `pieces`, `len` bytes in all) and then `tail`
    /// ("\r\n", or "\r\nEND\r\n" for the last value of a `get`) to the
    /// reply, after everything already in the buffer. A large value is
    /// offered to the direct writer first, together with the buffer's
    /// unsent bytes so the order on the wire stays that of the buffer; the
    /// part the socket did not take is buffered as usual. The pieces must
    /// stay valid (the item locked) only for the duration of the call.
    pub fn put_value<'v>(
        &mut self,
        len: usize,
        pieces: impl Iterator<Item = &'v [u8]> + Clone,
        tail: &[u8],
    ) {
        let last = tail.len() > 2;
        if self.wants_direct(len, last) && self.try_direct(len, pieces.clone(), tail) {
            return;
        }
        self.buf.reserve(len + tail.len());
        for p in pieces {
            self.buf.extend_from_slice(p);
        }
        self.buf.extend_from_slice(tail);
    }

    /// The direct path of [`Out::put_value`]. False if nothing was tried
    /// (too many pieces): the caller buffers the value.
    fn try_direct<'v>(
        &mut self,
        len: usize,
        pieces: impl Iterator<Item = &'v [u8]> + Clone,
        tail: &[u8],
    ) -> bool {
        let Some(direct) = self.direct.as_deref_mut() else {
            return false;
        };
        let pending = self.buf.len() - self.sent;
        let mut iov: Vec<IoSlice> = Vec::with_capacity(8);
        if pending > 0 {
            iov.push(IoSlice::new(&self.buf[self.sent..]));
        }
        for p in pieces.clone() {
            iov.push(IoSlice::new(p));
            if iov.len() > MAX_IOV {
                return false;
            }
        }
        iov.push(IoSlice::new(tail));
        let total = pending + len + tail.len();
        let n = direct.write_now(&iov).min(total);
        drop(iov);
        if n < total {
            self.blocked = true;
        }
        if n < pending {
            self.sent += n;
            self.buf.reserve(len + tail.len());
            for p in pieces {
                self.buf.extend_from_slice(p);
            }
            self.buf.extend_from_slice(tail);
            return true;
        }
        self.sent = self.buf.len();
        // Buffer the unsent end of value + tail.
        let mut skip = n - pending;
        let mut keep = |p: &[u8]| {
            if skip >= p.len() {
                skip -= p.len();
            } else {
                self.buf.extend_from_slice(&p[skip..]);
                skip = 0;
            }
        };
        for p in pieces {
            keep(p);
        }
        keep(tail);
        true
    }
}

impl Deref for Out<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.buf
    }
}

impl DerefMut for Out<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `room` bytes per call, recording them.
    struct Sink {
        wire: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl DirectWrite for Sink {
        fn write_now(&mut self, bufs: &[IoSlice<'_>]) -> usize {
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.room - n);
                self.wire.extend_from_slice(&b[..take]);
                n += take;
            }
            n
        }
    }

    /// Whatever the socket takes, wire + unsent buffer = the buffered reply.
    #[test]
    fn wire_plus_buffer_is_the_reply() {
        let value: Vec<u8> = (0..80_000u32).map(|i| (i % 251) as u8).collect();
        let pieces = || value.chunks(30_000);
        let mut want = b"HEAD\r\n".to_vec();
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\n");
        for room in [0, 3, 6, 7, 30_006, 80_005, 80_007, 80_008, 1 << 20] {
            let mut buf = b"xxHEAD\r\n".to_vec();
            let mut sink = Sink {
                wire: Vec::new(),
                room,
                calls: 0,
            };
            let mut out = Out::with_direct(&mut buf, 2, &mut sink);
            out.put_value(value.len(), pieces(), b"\r\n");
            // A second large value after a short write is buffered untried.
            out.put_value(value.len(), pieces(), b"\r\n");
            let sent = out.sent();
            let short = room < want.len();
            let mut got = sink.wire.clone();
            got.extend_from_slice(&buf[sent..]);
            let mut want2 = want.clone();
            want2.extend_from_slice(&value);
            want2.extend_from_slice(b"\r\n");
            assert_eq!(got, want2, "room {room}");
            assert_eq!(sink.calls, if short { 1 } else { 2 }, "room {room}");
        }
    }

    #[test]
    fn small_values_and_no_writer_are_buffered() {
        let mut buf = Vec::new();
        let mut out = Out::buffered(&mut buf);
        out.extend_from_slice(b"V\r\n");
        out.put_value(1 << 20, [&[7u8; 1 << 20][..]].into_iter(), b"\r\n");
        assert_eq!(buf.len(), 3 + (1 << 20) + 2);
        let mut buf = Vec::new();
        let mut sink = Sink {
            wire: Vec::new(),
            room: 1 << 20,
            calls: 0,
        };
        let mut out = Out::with_direct(&mut buf, 0, &mut sink);
        out.put_value(3, [&b"abc"[..]].into_iter(), b"\r\n");
        // A mid-size value goes direct only as the batch's last output.
        let mid = [5u8; DIRECT_LAST_MIN];
        out.more_input = true;
        out.put_value(mid.len(), [&mid[..]].into_iter(), b"\r\nEND\r\n");
        out.more_input = false;
        out.put_value(mid.len(), [&mid[..]].into_iter(), b"\r\n");
        assert_eq!(out.sent(), 0);
        out.put_value(mid.len(), [&mid[..]].into_iter(), b"\r\nEND\r\n");
        assert_eq!(out.sent(), out.len());
        assert_eq!(sink.calls, 1);
        let mut want = b"abc\r\n".to_vec();
        for tail in [&b"\r\nEND\r\n"[..], b"\r\n", b"\r\nEND\r\n"] {
            want.extend_from_slice(&mid);
            want.extend_from_slice(tail);
        }
        assert_eq!(sink.wire, want);
    }
}
