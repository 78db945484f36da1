//! Prefetching for pipelined input. While one request is handled, the keys
//! of the next few requests in the buffer are located and what their lookups
//! will read is brought into cache in two stages (`Store::prefetch_bucket`,
//! then `Store::prefetch_item`), so the cache misses of a lookup — the
//! stripe lock, the bucket, the item: most of the server's own time per small
//! request — overlap the handling of the requests before it instead of
//! stalling each request in turn.
//!
//! The worker uses [`next_request`] too, for the first request of each
//! ready connection (prefetched while it reads the other connections).
//!
//! Only a hint: [`next_request`] reads just enough of a request to find its
//! key and its end. Where it cannot (an unusual or incomplete request) the
//! lookahead stops for this batch; a wrong guess costs a wasted prefetch,
//! never a wrong answer, because every request is still parsed and executed
//! by its handler as usual.

use crate::storage::{Prefetch, Store};
use memchr::memchr;

/// Requests the first stage runs ahead of the one being handled: far enough
/// for a memory load to complete while the requests before it are handled.
const DEPTH: usize = 4;

/// The key a request at the head of `buf` looks up (None for commands
/// without one) and its length in bytes, line and data block included.
/// None when the request is incomplete or not one this reading knows how
/// to skip (binary input, a storage command whose length does not parse).
pub fn next_request(buf: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    if buf.first() == Some(&0x80) {
        return None;
    }
    let nl = memchr(b'\n', buf)?;
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut toks = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let cmd = toks.next()?;
    let mut tok = |i: usize| toks.nth(i);
    let after_line = nl + 1;
    // The data block of a storage command: its length token, then "\r\n".
    let with_block = |len: Option<&[u8]>| -> Option<usize> {
        let len = parse_len(len?)?;
        after_line.checked_add(len)?.checked_add(2)
    };
    Some(match cmd {
        b"get" | b"gets" | b"mg" | b"ma" | b"md" | b"incr" | b"decr" | b"delete" | b"touch" => {
            (tok(0), after_line)
        }
        b"gat" | b"gats" => (tok(1), after_line),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            let key = tok(0);
            // set <key> <flags> <exptime> <bytes>
            (key, with_block(tok(2))?)
        }
        b"ms" => {
            let key = tok(0);
            (key, with_block(tok(0))?)
        }
        _ => (None, after_line),
    })
}

/// A data block length as the handlers accept it (digits only).
fn parse_len(t: &[u8]) -> Option<usize> {
    if t.is_empty() || t.len() > 10 {
        return None;
    }
    t.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

/// The lookahead of one `process` call over one input buffer.
pub struct Lookahead {
    /// Offset of the first request not yet looked at.
    scan: usize,
    /// Requests looked at but not yet handled, oldest first: their offsets
    /// and first-stage tokens.
    ring: [(usize, Option<Prefetch>); DEPTH],
    head: usize,
    len: usize,
    stopped: bool,
}

impl Lookahead {
    pub fn new(start: usize) -> Lookahead {
        Lookahead {
            scan: start,
            ring: [(0, None); DEPTH],
            head: 0,
            len: 0,
            stopped: false,
        }
    }

    /// Called before the request at `pos` is handled: keeps the first stage
    /// `DEPTH` requests ahead and runs the second for the request after it.
    #[inline]
    pub fn advance(&mut self, input: &[u8], pos: usize, store: &Store) {
        self.advance_with(input, pos, store, next_request)
    }

    /// [`Lookahead::advance`] over other items than requests (the keys of
    /// a multi-get line): `next` reads the item at the head of a buffer, its
    /// key if any and its length (None: stop looking).
    #[inline]
    pub fn advance_with(
        &mut self,
        input: &[u8],
        pos: usize,
        store: &Store,
        next: impl Fn(&[u8]) -> Option<(Option<&[u8]>, usize)>,
    ) {
        while self.len > 0 && self.ring[self.head].0 < pos {
            self.head = (self.head + 1) % DEPTH;
            self.len -= 1;
        }
        if self.scan < pos {
            // Handlers consumed more than this reading guessed: start over.
            self.scan = pos;
            self.len = 0;
        }
        while self.len < DEPTH && !self.stopped {
            let Some((key, n)) = input.get(self.scan..).and_then(&next) else {
                self.stopped = true;
                break;
            };
            // The request being handled now is too late to prefetch for.
            let token = key
                .filter(|_| self.scan != pos)
                .map(|k| store.prefetch_bucket(k));
            self.ring[(self.head + self.len) % DEPTH] = (self.scan, token);
            self.len += 1;
            self.scan += n;
        }
        if self.len > 1 {
            let (at, token) = self.ring[(self.head + 1) % DEPTH];
            if at > pos {
                if let Some(t) = token {
                    store.prefetch_item(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_request;

    #[test]
    fn finds_keys_and_request_ends() {
        let k = |s: &'static [u8]| Some(s);
        assert_eq!(next_request(b"get foo\r\nget"), Some((k(b"foo"), 9)));
        assert_eq!(next_request(b"get a b c\n"), Some((k(b"a"), 10)));
        assert_eq!(next_request(b"mg a:1 v\r\n"), Some((k(b"a:1"), 10)));
        assert_eq!(next_request(b"ma n:1 q\r\nmn\r\n"), Some((k(b"n:1"), 10)));
        assert_eq!(next_request(b"gat 10 key\r\n"), Some((k(b"key"), 12)));
        assert_eq!(next_request(b"incr c 5\r\n"), Some((k(b"c"), 10)));
        let set = b"set k 0 0 5\r\nhello\r\nget k\r\n";
        assert_eq!(next_request(set), Some((k(b"k"), 20)));
        let cas = b"cas k 0 0 2 77 noreply\r\nhi\r\n";
        assert_eq!(next_request(cas), Some((k(b"k"), cas.len())));
        let ms = b"ms k 3 T0 q\r\nabc\r\n";
        assert_eq!(next_request(ms), Some((k(b"k"), ms.len())));
        assert_eq!(next_request(b"mn\r\n"), Some((None, 4)));
        assert_eq!(next_request(b"version\r\n"), Some((None, 9)));
    }

    #[test]
    fn stops_where_it_cannot_tell() {
        assert_eq!(next_request(b""), None);
        assert_eq!(next_request(b"get foo"), None, "no newline yet");
        assert_eq!(next_request(b"\x80\x00\x00\x03get\n"), None, "binary");
        assert_eq!(next_request(b"set k 0 0 x\r\n"), None, "bad length");
        assert_eq!(next_request(b"set k 0 0\r\n"), None, "no length");
        assert_eq!(next_request(b"ms k -1\r\n"), None, "negative length");
        assert_eq!(next_request(b"\r\n"), None, "empty line");
        // A huge length is not an overflow.
        assert!(next_request(b"set k 0 0 9999999999\r\n").is_some());
    }
}
