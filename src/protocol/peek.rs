//! A cheap look at the key of the first request in a buffer, so a worker
//! can start loading its hash bucket and item into cache (see
//! `Store::prefetch_bucket`) while it reads other connections' requests. Only a
//! hint: a wrong guess costs a wasted prefetch, never a wrong answer.

use memchr::memchr2;

/// Longest key memcached accepts.
const KEY_MAX: usize = 250;

/// The second token of the first line (the key of `get k`, `set k 0 0 5`,
/// `mg k v`, `incr k 1` ...), or `None` if the line has no second token in
/// its first bytes or the input is not text (binary requests start 0x80).
pub fn first_key(buf: &[u8]) -> Option<&[u8]> {
    if buf.first().is_none_or(|&b| b == 0x80) {
        return None;
    }
    let head = &buf[..buf.len().min(16)];
    let sp = memchr::memchr(b' ', head)?;
    let rest = &buf[sp + 1..];
    let rest = &rest[..rest.len().min(KEY_MAX + 1)];
    let end = memchr2(b' ', b'\r', rest).or_else(|| memchr::memchr(b'\n', rest))?;
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::first_key;

    #[test]
    fn finds_the_key_of_common_requests() {
        assert_eq!(first_key(b"get foo\r\n"), Some(&b"foo"[..]));
        assert_eq!(first_key(b"get foo bar\r\n"), Some(&b"foo"[..]));
        assert_eq!(first_key(b"set k:1 0 0 5\r\nhello\r\n"), Some(&b"k:1"[..]));
        assert_eq!(first_key(b"mg a:17 v f\r\n"), Some(&b"a:17"[..]));
        assert_eq!(first_key(b"ms a:17 100 T0\r\n"), Some(&b"a:17"[..]));
        assert_eq!(first_key(b"get foo\n"), Some(&b"foo"[..]));
    }

    #[test]
    fn declines_what_it_cannot_see() {
        assert_eq!(first_key(b""), None);
        assert_eq!(first_key(b"version\r\n"), None);
        assert_eq!(first_key(b"get fo"), None, "incomplete line");
        assert_eq!(first_key(b"get  x\r\n"), None, "empty token");
        assert_eq!(first_key(b"\x80\x00\x00\x03get"), None, "binary");
        let long = [b"get ".to_vec(), vec![b'k'; 400], b"\r\n".to_vec()].concat();
        assert_eq!(first_key(&long), None, "longer than any key");
    }
}
