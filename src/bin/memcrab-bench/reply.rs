//! Reply framing and checking. Pure functions over the read buffer: given the
//! bytes received so far and what the oldest in-flight request expects, say
//! whether its whole reply is there, how long it is, and what it contained.
//! Anything that is not a reply the request could get is a `Desync`.

use crate::workload::Spec;

/// What an in-flight request is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Text `get` of n keys: VALUE blocks then END.
    TextGet(usize),
    /// Text `set`: STORED.
    TextSet,
    /// n `mg k v` lines: one VA or EN each.
    MetaGet(usize),
    /// `ms`: HD.
    MetaSet,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes of the reply (to consume from the buffer).
    pub len: usize,
    /// Values returned (gets).
    pub hits: usize,
    /// Server error replies (ERROR, CLIENT_ERROR, SERVER_ERROR, NOT_STORED, NS …).
    pub errors: usize,
    /// Values whose bytes differ from what was set.
    pub bad_values: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// The reply is not complete yet.
    Partial,
    Done(Outcome),
    /// Bytes no reply to this request can start with: the stream is lost.
    Desync(String),
}

fn line_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = &buf[pos..];
    // memchr for '\r' rather than memmem::find, which builds a searcher on
    // every call (the generator's own CPU shares the cores it measures).
    let mut from = 0;
    loop {
        let i = from + memchr::memchr(b'\r', &rest[from..])?;
        if rest.get(i + 1) == Some(&b'\n') {
            return Some((&rest[..i], pos + i + 2));
        }
        from = i + 1;
    }
}

fn is_error_line(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

fn show(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned()
}

fn parse_usize(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut n = 0usize;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (d - b'0') as usize;
    }
    Some(n)
}

/// Checks a data block of `len` bytes at `pos` followed by CRLF.
/// Returns the position after it, `Ok(None)` if not all there yet.
fn data_block(
    buf: &[u8],
    pos: usize,
    len: usize,
    spec: &Spec,
    out: &mut Outcome,
) -> Result<Option<usize>, String> {
    let end = pos + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err("data block not followed by CRLF".into());
    }
    if len != spec.value.len() || (spec.verify_data && buf[pos..end] != spec.value[..]) {
        out.bad_values += 1;
    }
    Ok(Some(end + 2))
}

/// Parses the reply to the oldest in-flight request at the start of `buf`.
/// `keys` are the keys it asked for (text gets check VALUE keys against them).
pub fn parse(buf: &[u8], expect: Expect, keys: &[u32], spec: &Spec) -> Parse {
    match parse_inner(buf, expect, keys, spec) {
        Ok(Some(o)) => Parse::Done(o),
        Ok(None) => Parse::Partial,
        Err(e) => Parse::Desync(e),
    }
}

fn parse_inner(
    buf: &[u8],
    expect: Expect,
    keys: &[u32],
    spec: &Spec,
) -> Result<Option<Outcome>, String> {
    let mut out = Outcome::default();
    let mut pos = 0;
    match expect {
        Expect::TextGet(_) => {
            // VALUE keys must come in request order, each at most once.
            let mut next_key = 0;
            loop {
                let Some((line, after)) = line_at(buf, pos) else {
                    return Ok(None);
                };
                if line == b"END" {
                    out.len = after;
                    return Ok(Some(out));
                }
                if is_error_line(line) {
                    out.errors += 1;
                    out.len = after;
                    return Ok(Some(out));
                }
                let Some(rest) = line.strip_prefix(b"VALUE ") else {
                    return Err(format!("unexpected line in get reply: {:?}", show(line)));
                };
                let mut f = rest.split(|&b| b == b' ');
                let (Some(key), Some(_flags), Some(len)) = (f.next(), f.next(), f.next()) else {
                    return Err(format!("short VALUE line: {:?}", show(line)));
                };
                let len = parse_usize(len)
                    .ok_or_else(|| format!("bad VALUE length: {:?}", show(line)))?;
                let idx = spec
                    .parse_key(key)
                    .ok_or_else(|| format!("VALUE for a key not ours: {:?}", show(line)))?;
                match keys[next_key..].iter().position(|&k| k == idx) {
                    Some(p) => next_key += p + 1,
                    None => {
                        return Err(format!(
                            "VALUE for a key not asked or out of order: {:?}",
                            show(line)
                        ))
                    }
                }
                match data_block(buf, after, len, spec, &mut out)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
                out.hits += 1;
            }
        }
        Expect::MetaGet(n) => {
            for _ in 0..n {
                let Some((line, after)) = line_at(buf, pos) else {
                    return Ok(None);
                };
                if line == b"EN" {
                    pos = after;
                } else if let Some(rest) = line.strip_prefix(b"VA ") {
                    let len = rest.split(|&b| b == b' ').next().unwrap_or(b"");
                    let len = parse_usize(len)
                        .ok_or_else(|| format!("bad VA length: {:?}", show(line)))?;
                    match data_block(buf, after, len, spec, &mut out)? {
                        Some(p) => pos = p,
                        None => return Ok(None),
                    }
                    out.hits += 1;
                } else if is_error_line(line) {
                    out.errors += 1;
                    pos = after;
                } else {
                    return Err(format!("unexpected line in mg reply: {:?}", show(line)));
                }
            }
            out.len = pos;
            Ok(Some(out))
        }
        Expect::TextSet | Expect::MetaSet => {
            let Some((line, after)) = line_at(buf, 0) else {
                return Ok(None);
            };
            let ok: &[u8] = if expect == Expect::TextSet {
                b"STORED"
            } else {
                b"HD"
            };
            let refused: &[&[u8]] = if expect == Expect::TextSet {
                &[b"NOT_STORED", b"EXISTS", b"NOT_FOUND"]
            } else {
                &[b"NS", b"EX", b"NF"]
            };
            if line == ok {
            } else if is_error_line(line) || refused.contains(&line) {
                out.errors += 1;
            } else {
                return Err(format!("unexpected line in set reply: {:?}", show(line)));
            }
            out.len = after;
            Ok(Some(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;
    use clap::Parser;

    fn spec(extra: &[&str]) -> Spec {
        let mut v = vec!["memcrab-bench", "--keys", "100", "--value-size", "3"];
        v.extend_from_slice(extra);
        Spec::new(&Args::parse_from(v))
    }

    fn done(p: Parse) -> Outcome {
        match p {
            Parse::Done(o) => o,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[test]
    fn text_get_hits_misses_and_partials() {
        let s = spec(&[]);
        let reply = b"VALUE mb:07 0 3\r\nabc\r\nVALUE mb:09 5 3 77\r\nabc\r\nEND\r\nSTORED\r\n";
        let o = done(parse(reply, Expect::TextGet(3), &[7, 8, 9], &s));
        assert_eq!(
            (o.hits, o.errors, o.bad_values, o.len),
            (2, 0, 0, reply.len() - 8)
        );
        for cut in 0..o.len {
            assert_eq!(
                parse(&reply[..cut], Expect::TextGet(3), &[7, 8, 9], &s),
                Parse::Partial,
                "cut {cut}"
            );
        }
        let o = done(parse(b"END\r\n", Expect::TextGet(1), &[1], &s));
        assert_eq!((o.hits, o.len), (0, 5));
    }

    #[test]
    fn text_get_detects_wrong_data_and_keys() {
        let s = spec(&[]);
        let o = done(parse(
            b"VALUE mb:07 0 3\r\nabd\r\nEND\r\n",
            Expect::TextGet(1),
            &[7],
            &s,
        ));
        assert_eq!(o.bad_values, 1);
        let o = done(parse(
            b"VALUE mb:07 0 2\r\nab\r\nEND\r\n",
            Expect::TextGet(1),
            &[7],
            &s,
        ));
        assert_eq!(o.bad_values, 1);
        assert!(matches!(
            parse(
                b"VALUE mb:08 0 3\r\nabc\r\nEND\r\n",
                Expect::TextGet(1),
                &[7],
                &s
            ),
            Parse::Desync(_)
        ));
        assert!(matches!(
            parse(
                b"VALUE mb:07 0 3\r\nabcd\r\nEND\r\n",
                Expect::TextGet(1),
                &[7],
                &s
            ),
            Parse::Desync(_)
        ));
        // Out of order is a desync: memcached answers in request order.
        assert!(matches!(
            parse(
                b"VALUE mb:08 0 3\r\nabc\r\nVALUE mb:07 0 3\r\nabc\r\nEND\r\n",
                Expect::TextGet(2),
                &[7, 8],
                &s
            ),
            Parse::Desync(_)
        ));
        assert!(matches!(
            parse(b"STORED\r\n", Expect::TextGet(1), &[7], &s),
            Parse::Desync(_)
        ));
        let o = done(parse(
            b"CLIENT_ERROR bad command line format\r\n",
            Expect::TextGet(1),
            &[7],
            &s,
        ));
        assert_eq!(o.errors, 1);
    }

    #[test]
    fn sets_and_meta() {
        let s = spec(&["--protocol", "meta"]);
        assert_eq!(
            done(parse(b"STORED\r\n", Expect::TextSet, &[], &s)).errors,
            0
        );
        assert_eq!(
            done(parse(b"NOT_STORED\r\n", Expect::TextSet, &[], &s)).errors,
            1
        );
        assert_eq!(done(parse(b"HD\r\n", Expect::MetaSet, &[], &s)).len, 4);
        assert_eq!(done(parse(b"NS\r\n", Expect::MetaSet, &[], &s)).errors, 1);
        assert!(matches!(
            parse(b"STORED\r\n", Expect::MetaSet, &[], &s),
            Parse::Desync(_)
        ));
        let r = b"VA 3\r\nabc\r\nEN\r\nVA 3 f0\r\nabc\r\n";
        let o = done(parse(r, Expect::MetaGet(3), &[1, 2, 3], &s));
        assert_eq!((o.hits, o.len), (2, r.len()));
        assert_eq!(
            parse(&r[..r.len() - 1], Expect::MetaGet(3), &[1, 2, 3], &s),
            Parse::Partial
        );
        assert!(matches!(
            parse(b"HD\r\n", Expect::MetaGet(1), &[1], &s),
            Parse::Desync(_)
        ));
    }
}
