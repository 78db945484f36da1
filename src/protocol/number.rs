//! Numbers in memcached's text protocols: parsed the way memcached's
//! `safe_strto*` helpers (over C's `strtoul`/`strtol`) accept them, and
//! written in decimal without allocating. Kept apart from `text` so other
//! parsers (meta, later binary/RESP adapters) can use the same rules.

fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Digits with optional leading whitespace and sign, like `strtoull`.
/// Returns (negative, magnitude) or None for no digits, overflow or junk after.
fn c_number(s: &[u8]) -> Option<(bool, u64)> {
    let mut i = 0;
    while i < s.len() && c_isspace(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add((s[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start {
        return None;
    }
    // C strings end at NUL; anything else after the digits must be a space.
    if i < s.len() && !c_isspace(s[i]) && s[i] != 0 {
        return None;
    }
    Some((neg, v))
}

/// memcached's `safe_strtoull`: "-0" is 0, "-1" is refused, "+5" is 5.
pub fn strtoull(s: &[u8]) -> Option<u64> {
    let (neg, v) = c_number(s)?;
    let v = if neg { v.wrapping_neg() } else { v };
    if (v as i64) < 0 && neg {
        return None;
    }
    Some(v)
}

/// memcached's `safe_strtoul` into a 32-bit field: parsed as 64-bit, then
/// truncated (so 4294967296 becomes 0, as memcached 1.6 stores it).
pub fn strtoul32(s: &[u8]) -> Option<u32> {
    strtoull(s).map(|v| v as u32)
}

/// memcached's `safe_strtol` into an `int32_t`: parsed as 64-bit, truncated.
pub fn strtol32(s: &[u8]) -> Option<i64> {
    let (neg, v) = c_number(s)?;
    let v: i64 = if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        (v as i64).wrapping_neg()
    } else {
        i64::try_from(v).ok()?
    };
    Some(v as i32 as i64)
}

/// Appends `v` in decimal without allocating.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(crate::decimal::decimal(v, &mut buf));
}

/// Appends `v` in decimal (with a leading `-` when negative) without allocating.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_c() {
        assert_eq!(strtoull(b"5"), Some(5));
        assert_eq!(strtoull(b"+5"), Some(5));
        assert_eq!(strtoull(b"-0"), Some(0));
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"1x"), None);
        assert_eq!(strtoull(b"1\r"), Some(1));
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoull(b"abc"), None);
        assert_eq!(strtoul32(b"4294967295"), Some(u32::MAX));
        assert_eq!(strtoul32(b"4294967296"), Some(0));
        assert_eq!(strtoul32(b"-1"), None);
        assert_eq!(strtol32(b"-1"), Some(-1));
        assert_eq!(strtol32(b"99999999999"), Some(1215752191));
        assert_eq!(strtol32(b"4294967301"), Some(5));
        assert_eq!(strtol32(b"99999999999999999999"), None);
    }

    #[test]
    fn push_u64_writes_decimal() {
        for v in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
