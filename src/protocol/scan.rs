//! Byte search tuned for protocol lines: most searches (a line's end, a
//! token's end, a NUL check) finish within a few dozen bytes, where memchr's
//! vector setup costs more than the scan (profiled: ~70 instructions per
//! call, two to four calls per request). So the first bytes are scanned 8 at
//! a time in a register (SWAR); longer inputs fall through to memchr.

/// Bytes scanned with SWAR before handing over to memchr.
const SHORT: usize = 64;

/// Index of the first `needle` in `hay`.
#[inline]
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * needle as u64;
    let head = hay.len().min(SHORT);
    let mut i = 0;
    while i + 8 <= head {
        let mut b = [0u8; 8];
        b.copy_from_slice(&hay[i..i + 8]);
        // Bytes equal to `needle` become 0; the lowest flagged byte is the
        // first zero (borrows only create false flags above a real zero).
        let x = u64::from_le_bytes(b) ^ pattern;
        let z = x.wrapping_sub(ONES) & !x & HIGHS;
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if hay.len() <= SHORT {
        return hay[i..].iter().position(|&b| b == needle).map(|p| i + p);
    }
    memchr::memchr(needle, &hay[i..]).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::find_byte;

    #[test]
    fn agrees_with_a_plain_search() {
        // Every length around the SWAR and SHORT boundaries, every position
        // of the first needle (or none), other needles after it, and bytes
        // that make the SWAR arithmetic borrow (0x00, 0x01, needle+1, 0xff).
        for needle in [b' ', b'\n', 0u8] {
            for len in (0..80usize).chain([127, 128, 129, 300]) {
                for first in (0..=len).step_by(if len > 80 { 7 } else { 1 }) {
                    let fill = [b'k', 0, 1, needle.wrapping_add(1), 0xff];
                    let mut s: Vec<u8> = (0..len)
                        .map(|i| fill[i % fill.len()])
                        .map(|b| if b == needle { b'k' } else { b })
                        .collect();
                    if first < len {
                        s[first] = needle;
                        for j in (first + 1..len).step_by(3) {
                            s[j] = needle;
                        }
                    }
                    let want = s.iter().position(|&b| b == needle);
                    assert_eq!(find_byte(&s, needle), want, "{needle} {s:?}");
                }
            }
        }
    }
}
