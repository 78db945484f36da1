//! Decimal formatting without allocation, shared by the store (the result
//! of an increment) and the protocols (numbers in replies): both are on the
//! hot path, where `to_string` would allocate per request.

/// `v` in decimal, written at the end of `buf`; returns the digits.
#[inline]
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
#[test]
fn writes_every_magnitude() {
    let mut buf = [0u8; 20];
    for v in [0, 1, 9, 10, 99, 100, 12345, u64::MAX / 10, u64::MAX] {
        assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
    }
}
