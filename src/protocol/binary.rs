//! memcached's binary protocol, framing only: request frames out of a byte
//! slice ([`parse_request`]), their extras/key/value checked per opcode into a
//! typed [`Command`] ([`decode`]), and response frames written into a
//! `Vec<u8>` ([`write_response`]). Pure functions that never allocate while
//! parsing and never panic on client bytes. Not wired into the server yet:
//! executing commands and choosing which replies quiet opcodes suppress are
//! the caller's.
//!
//! A frame is a 24-byte header followed by a body of extras, key and value,
//! in that order; every integer is big-endian:
//!
//! ```text
//! byte  0      1       2..4     4       5          6..8        8..12     12..16  16..24
//!       magic  opcode  key len  extras  data type  vbucket     body len  opaque  cas
//!                                 len              (response:
//!                                                  status)
//! ```
//!
//! The rules below are memcached 1.6's (checked against memcached 1.6.18):
//! what it closes the connection on, what it answers, which extras each
//! opcode takes. Where memcached does not check something and then misreads
//! the stream, this module rejects instead; such places say so.

use crate::storage::SetMode;

/// First byte of every request.
pub const REQ_MAGIC: u8 = 0x80;
/// First byte of every response.
pub const RES_MAGIC: u8 = 0x81;
/// Length of the fixed header of requests and responses.
pub const HEADER_LEN: usize = 24;
/// Longest key memcached accepts (the header allows 65535).
pub const KEY_MAX: usize = 250;

/// Exptime of an increment/decrement that must not create a missing item.
pub const ARITH_NO_CREATE: u32 = 0xffff_ffff;

/// Request opcodes. memcached 1.6 implements all of them except
/// `Verbosity`, which it answers with [`Status::UnknownCommand`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Get = 0x00,
    Set = 0x01,
    Add = 0x02,
    Replace = 0x03,
    Delete = 0x04,
    Increment = 0x05,
    Decrement = 0x06,
    Quit = 0x07,
    Flush = 0x08,
    GetQ = 0x09,
    Noop = 0x0a,
    Version = 0x0b,
    GetK = 0x0c,
    GetKQ = 0x0d,
    Append = 0x0e,
    Prepend = 0x0f,
    Stat = 0x10,
    SetQ = 0x11,
    AddQ = 0x12,
    ReplaceQ = 0x13,
    DeleteQ = 0x14,
    IncrementQ = 0x15,
    DecrementQ = 0x16,
    QuitQ = 0x17,
    FlushQ = 0x18,
    AppendQ = 0x19,
    PrependQ = 0x1a,
    Verbosity = 0x1b,
    Touch = 0x1c,
    Gat = 0x1d,
    Gatq = 0x1e,
    SaslListMechs = 0x20,
    SaslAuth = 0x21,
    SaslStep = 0x22,
    Gatk = 0x23,
    Gatkq = 0x24,
}

impl Opcode {
    /// The opcode with this wire value, or `None` for one memcached does not know.
    pub fn from_u8(b: u8) -> Option<Opcode> {
        use Opcode::*;
        Some(match b {
            0x00 => Get,
            0x01 => Set,
            0x02 => Add,
            0x03 => Replace,
            0x04 => Delete,
            0x05 => Increment,
            0x06 => Decrement,
            0x07 => Quit,
            0x08 => Flush,
            0x09 => GetQ,
            0x0a => Noop,
            0x0b => Version,
            0x0c => GetK,
            0x0d => GetKQ,
            0x0e => Append,
            0x0f => Prepend,
            0x10 => Stat,
            0x11 => SetQ,
            0x12 => AddQ,
            0x13 => ReplaceQ,
            0x14 => DeleteQ,
            0x15 => IncrementQ,
            0x16 => DecrementQ,
            0x17 => QuitQ,
            0x18 => FlushQ,
            0x19 => AppendQ,
            0x1a => PrependQ,
            0x1b => Verbosity,
            0x1c => Touch,
            0x1d => Gat,
            0x1e => Gatq,
            0x20 => SaslListMechs,
            0x21 => SaslAuth,
            0x22 => SaslStep,
            0x23 => Gatk,
            0x24 => Gatkq,
            _ => return None,
        })
    }

    /// A quiet opcode: its reply is left out when it succeeds (for the get
    /// family: when the key is missing), so clients pipeline them and end
    /// the batch with a `Noop`.
    pub fn is_quiet(self) -> bool {
        self.base() != self
    }

    /// The non-quiet opcode this one is a variant of (itself if not quiet).
    pub fn base(self) -> Opcode {
        use Opcode::*;
        match self {
            GetQ => Get,
            GetKQ => GetK,
            SetQ => Set,
            AddQ => Add,
            ReplaceQ => Replace,
            DeleteQ => Delete,
            IncrementQ => Increment,
            DecrementQ => Decrement,
            QuitQ => Quit,
            FlushQ => Flush,
            AppendQ => Append,
            PrependQ => Prepend,
            Gatq => Gat,
            Gatkq => Gatk,
            other => other,
        }
    }
}

/// Response status codes memcached 1.6 sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Status {
    NoError = 0x00,
    KeyNotFound = 0x01,
    KeyExists = 0x02,
    ValueTooLarge = 0x03,
    InvalidArguments = 0x04,
    ItemNotStored = 0x05,
    /// Increment/decrement of a value that is not a decimal number.
    NonNumeric = 0x06,
    AuthError = 0x20,
    AuthContinue = 0x21,
    UnknownCommand = 0x81,
    OutOfMemory = 0x82,
}

impl Status {
    /// The status with this wire value, if memcached defines it.
    pub fn from_u16(v: u16) -> Option<Status> {
        use Status::*;
        Some(match v {
            0x00 => NoError,
            0x01 => KeyNotFound,
            0x02 => KeyExists,
            0x03 => ValueTooLarge,
            0x04 => InvalidArguments,
            0x05 => ItemNotStored,
            0x06 => NonNumeric,
            0x20 => AuthError,
            0x21 => AuthContinue,
            0x81 => UnknownCommand,
            0x82 => OutOfMemory,
            _ => return None,
        })
    }
}

/// The text memcached puts in the body of an error response (empty for the
/// two statuses that are not errors).
pub fn status_message(s: Status) -> &'static str {
    match s {
        Status::NoError | Status::AuthContinue => "",
        Status::KeyNotFound => "Not found",
        Status::KeyExists => "Data exists for key.",
        Status::ValueTooLarge => "Too large.",
        Status::InvalidArguments => "Invalid arguments",
        Status::ItemNotStored => "Not stored.",
        Status::NonNumeric => "Non-numeric server-side value for incr or decr",
        Status::AuthError => "Auth failure.",
        Status::UnknownCommand => "Unknown command",
        Status::OutOfMemory => "Out of memory",
    }
}

// ---------------------------------------------------------------------------
// Requests

/// The header of a request, as sent (the magic is always [`REQ_MAGIC`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    pub opcode: u8,
    pub key_len: u16,
    pub extras_len: u8,
    pub data_type: u8,
    pub vbucket: u16,
    /// Extras + key + value.
    pub body_len: u32,
    pub opaque: u32,
    pub cas: u64,
}

/// One request frame, borrowing its parts from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The opcode byte as sent; responses echo it, quiet or not.
    pub opcode: u8,
    /// `None` for an opcode memcached does not know.
    pub op: Option<Opcode>,
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// memcached ignores it (only raw bytes, 0, are defined).
    pub data_type: u8,
    /// memcached ignores it.
    pub vbucket: u16,
    /// Copied back into the response so clients match replies to requests.
    pub opaque: u32,
    pub cas: u64,
}

/// What [`parse_request`] found at the start of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Not a whole frame yet: `need` is the total length it needs, or
    /// [`HEADER_LEN`] while the header itself is incomplete.
    Incomplete { need: usize },
    /// A whole frame of `len` bytes (24 + body length).
    Request { req: Request<'a>, len: usize },
    /// The input cannot be framed; see [`FrameError`] for what memcached does.
    Invalid(FrameError),
}

/// Why a frame cannot be parsed. After any of these the stream has no
/// trustworthy frame boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The first byte is not [`REQ_MAGIC`]. memcached closes the connection
    /// without a reply to it (replies to earlier frames still go out). It
    /// waits for a whole header first; this needs one byte.
    BadMagic(u8),
    /// Extras + key are longer than the body. memcached answers
    /// [`Status::UnknownCommand`] with "Unknown command" and closes.
    BadLengths(RequestHeader),
    /// The body is longer than `max_body`. memcached has no such limit: it
    /// reads header, extras and key, then streams the value into its item.
    /// For set/add/replace/append/prepend a value over the item size limit
    /// gets [`Status::ValueTooLarge`] ("Too large.") and is read and dropped,
    /// the connection stays open; other opcodes with a body that large break
    /// their own length rules (InvalidArguments and close) or are unknown
    /// (UnknownCommand, body dropped). The caller can do the same from the
    /// header, or close.
    TooLarge(RequestHeader),
}

/// Frames the first request in `input`. A body longer than `max_body` is
/// refused before it is buffered. Never panics, never allocates.
pub fn parse_request(input: &[u8], max_body: usize) -> Frame<'_> {
    match input.first() {
        None => return Frame::Incomplete { need: HEADER_LEN },
        Some(&m) if m != REQ_MAGIC => return Frame::Invalid(FrameError::BadMagic(m)),
        Some(_) => {}
    }
    let Some(h) = read_request_header(input) else {
        return Frame::Incomplete { need: HEADER_LEN };
    };
    let body_len = h.body_len as usize;
    if usize::from(h.extras_len) + usize::from(h.key_len) > body_len {
        return Frame::Invalid(FrameError::BadLengths(h));
    }
    let len = match HEADER_LEN.checked_add(body_len) {
        Some(len) if body_len <= max_body => len,
        _ => return Frame::Invalid(FrameError::TooLarge(h)),
    };
    let Some(body) = input.get(HEADER_LEN..len) else {
        return Frame::Incomplete { need: len };
    };
    match split_body(&h, body) {
        Some(req) => Frame::Request { req, len },
        None => Frame::Invalid(FrameError::BadLengths(h)),
    }
}

/// The request header at the start of `input` (magic not checked).
fn read_request_header(input: &[u8]) -> Option<RequestHeader> {
    let h: &[u8; HEADER_LEN] = input.get(..HEADER_LEN)?.try_into().ok()?;
    Some(RequestHeader {
        opcode: h[1],
        key_len: u16::from_be_bytes([h[2], h[3]]),
        extras_len: h[4],
        data_type: h[5],
        vbucket: u16::from_be_bytes([h[6], h[7]]),
        body_len: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
        cas: u64::from_be_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]),
    })
}

/// Splits a whole body into extras, key and value.
fn split_body<'a>(h: &RequestHeader, body: &'a [u8]) -> Option<Request<'a>> {
    let (extras, rest) = body.split_at_checked(usize::from(h.extras_len))?;
    let (key, value) = rest.split_at_checked(usize::from(h.key_len))?;
    Some(Request {
        opcode: h.opcode,
        op: Opcode::from_u8(h.opcode),
        extras,
        key,
        value,
        data_type: h.data_type,
        vbucket: h.vbucket,
        opaque: h.opaque,
        cas: h.cas,
    })
}

/// Appends a whole request frame; for clients, tests and benches (keys up
/// to 65535 bytes, extras up to 255, body up to 4 GB).
pub fn write_request(
    out: &mut Vec<u8>,
    opcode: u8,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let h = RequestHeader {
        opcode,
        key_len: key.len() as u16,
        extras_len: extras.len() as u8,
        data_type: 0,
        vbucket: 0,
        body_len: (extras.len() + key.len() + value.len()) as u32,
        opaque,
        cas,
    };
    write_request_header(out, &h);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Appends a request header.
pub fn write_request_header(out: &mut Vec<u8>, h: &RequestHeader) {
    write_header(out, REQ_MAGIC, h);
}

// ---------------------------------------------------------------------------
// Commands

/// A request checked against its opcode's rules, with its extras decoded.
/// Quiet opcodes are their base command with `quiet` set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Get, GetK and their quiet forms; `with_key` puts the key in the reply.
    Get {
        key: &'a [u8],
        quiet: bool,
        with_key: bool,
    },
    /// Gat, Gatk and their quiet forms: get and set a new exptime.
    Gat {
        key: &'a [u8],
        exptime: u32,
        quiet: bool,
        with_key: bool,
    },
    /// Set a new exptime; the reply carries the flags but no value.
    Touch {
        key: &'a [u8],
        exptime: u32,
    },
    /// Set, Add, Replace (flags and exptime from the extras), Append and
    /// Prepend (flags and exptime 0, unused). `cas` 0 means no compare.
    Store {
        mode: SetMode,
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: u32,
        cas: u64,
        quiet: bool,
    },
    /// `cas` 0 means no compare.
    Delete {
        key: &'a [u8],
        cas: u64,
        quiet: bool,
    },
    /// Increment or decrement; a missing item is created with `initial`
    /// unless `exptime` is [`ARITH_NO_CREATE`].
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
        initial: u64,
        exptime: u32,
        cas: u64,
        quiet: bool,
    },
    /// `exptime` 0 (or no extras) flushes now.
    Flush {
        exptime: u32,
        quiet: bool,
    },
    /// memcached sends the reply and flushes its output.
    Noop,
    Version,
    /// Reply (unless quiet), then close.
    Quit {
        quiet: bool,
    },
    /// `key` is the stats group; empty for the general stats.
    Stat {
        key: &'a [u8],
    },
    /// Decoded per the protocol (4 bytes of level), but memcached 1.6 has no
    /// handler for it and answers [`Status::UnknownCommand`] whatever it holds.
    Verbosity {
        level: u32,
    },
    /// SASL commands; memcached without `-S` answers each with
    /// [`Status::UnknownCommand`].
    SaslListMechs,
    Sasl {
        step: bool,
        mech: &'a [u8],
        data: &'a [u8],
    },
}

/// What a command may carry: the exact extras length, and whether it needs,
/// forbids or may have a key or a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    No,
    Yes,
    Maybe,
}

/// Checks `req` against its opcode's rules the way memcached does and
/// decodes its extras. On `Err`, memcached sends that status with
/// [`status_message`] as body: after InvalidArguments (a key over 250 bytes
/// or a request of the wrong shape) it closes the connection; after
/// UnknownCommand it goes on with the next frame. (memcached then drops
/// `body_len` bytes counted from after the extras and key, eating that many
/// bytes of the next request too; this framing skips exactly the frame.)
pub fn decode<'a>(req: &Request<'a>) -> Result<Command<'a>, Status> {
    // memcached checks the key length first, even for unknown opcodes.
    if req.key.len() > KEY_MAX {
        return Err(Status::InvalidArguments);
    }
    let op = req.op.ok_or(Status::UnknownCommand)?;
    let quiet = op.is_quiet();
    let key = req.key;
    let cmd = match op.base() {
        Opcode::Get | Opcode::GetK => {
            shape(req, 0, Part::Yes, Part::No)?;
            let with_key = op.base() == Opcode::GetK;
            Command::Get {
                key,
                quiet,
                with_key,
            }
        }
        Opcode::Gat | Opcode::Gatk => {
            // memcached does not check for a value here: it answers, then
            // reads the value as the next request and usually closes.
            let e = shape(req, 4, Part::Yes, Part::No)?;
            let with_key = op.base() == Opcode::Gatk;
            let exptime = be32(e, 0)?;
            Command::Gat {
                key,
                exptime,
                quiet,
                with_key,
            }
        }
        Opcode::Touch => {
            let e = shape(req, 4, Part::Yes, Part::No)?;
            let exptime = be32(e, 0)?;
            Command::Touch { key, exptime }
        }
        Opcode::Set | Opcode::Add | Opcode::Replace => {
            let e = shape(req, 8, Part::Yes, Part::Maybe)?;
            let mode = match op.base() {
                Opcode::Set => SetMode::Set,
                Opcode::Add => SetMode::Add,
                _ => SetMode::Replace,
            };
            Command::Store {
                mode,
                key,
                value: req.value,
                flags: be32(e, 0)?,
                exptime: be32(e, 4)?,
                cas: req.cas,
                quiet,
            }
        }
        Opcode::Append | Opcode::Prepend => {
            shape(req, 0, Part::Yes, Part::Maybe)?;
            let mode = if op.base() == Opcode::Append {
                SetMode::Append
            } else {
                SetMode::Prepend
            };
            Command::Store {
                mode,
                key,
                value: req.value,
                flags: 0,
                exptime: 0,
                cas: req.cas,
                quiet,
            }
        }
        Opcode::Delete => {
            // The protocol once allowed 4 bytes of exptime here; 1.6 refuses.
            shape(req, 0, Part::Yes, Part::No)?;
            Command::Delete {
                key,
                cas: req.cas,
                quiet,
            }
        }
        Opcode::Increment | Opcode::Decrement => {
            let e = shape(req, 20, Part::Yes, Part::No)?;
            Command::Arith {
                incr: op.base() == Opcode::Increment,
                key,
                delta: be64(e, 0)?,
                initial: be64(e, 8)?,
                exptime: be32(e, 16)?,
                cas: req.cas,
                quiet,
            }
        }
        Opcode::Flush => {
            // Extras are optional: none, or 4 bytes of exptime.
            let exptime = if req.extras.is_empty() {
                shape(req, 0, Part::No, Part::No)?;
                0
            } else {
                be32(shape(req, 4, Part::No, Part::No)?, 0)?
            };
            Command::Flush { exptime, quiet }
        }
        Opcode::Noop => {
            shape(req, 0, Part::No, Part::No)?;
            Command::Noop
        }
        Opcode::Version => {
            shape(req, 0, Part::No, Part::No)?;
            Command::Version
        }
        Opcode::Quit => {
            shape(req, 0, Part::No, Part::No)?;
            Command::Quit { quiet }
        }
        Opcode::Stat => {
            // memcached does not check for a value here either (see Gat).
            shape(req, 0, Part::Maybe, Part::No)?;
            Command::Stat { key }
        }
        Opcode::Verbosity => {
            let e = shape(req, 4, Part::No, Part::No)?;
            Command::Verbosity { level: be32(e, 0)? }
        }
        Opcode::SaslListMechs => {
            shape(req, 0, Part::No, Part::No)?;
            Command::SaslListMechs
        }
        Opcode::SaslAuth | Opcode::SaslStep => {
            shape(req, 0, Part::Yes, Part::Maybe)?;
            Command::Sasl {
                step: op == Opcode::SaslStep,
                mech: key,
                data: req.value,
            }
        }
        // `base` maps every quiet opcode to one of the arms above.
        _ => return Err(Status::UnknownCommand),
    };
    Ok(cmd)
}

/// Checks the extras length and the presence of key and value; returns the
/// extras. Every violation is InvalidArguments, as in memcached.
fn shape<'a>(req: &Request<'a>, extras: usize, key: Part, value: Part) -> Result<&'a [u8], Status> {
    let ok = req.extras.len() == extras && fits(key, req.key) && fits(value, req.value);
    if ok {
        Ok(req.extras)
    } else {
        Err(Status::InvalidArguments)
    }
}

fn fits(p: Part, part: &[u8]) -> bool {
    match p {
        Part::No => part.is_empty(),
        Part::Yes => !part.is_empty(),
        Part::Maybe => true,
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, Status> {
    let s = b.get(at..at + 4).ok_or(Status::InvalidArguments)?;
    let a: [u8; 4] = s.try_into().map_err(|_| Status::InvalidArguments)?;
    Ok(u32::from_be_bytes(a))
}

fn be64(b: &[u8], at: usize) -> Result<u64, Status> {
    let s = b.get(at..at + 8).ok_or(Status::InvalidArguments)?;
    let a: [u8; 8] = s.try_into().map_err(|_| Status::InvalidArguments)?;
    Ok(u64::from_be_bytes(a))
}

// ---------------------------------------------------------------------------
// Responses

/// The header of a response. memcached echoes the request's opcode (quiet
/// or not) and opaque, and always sends data type 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHeader {
    pub opcode: u8,
    pub key_len: u16,
    pub extras_len: u8,
    pub data_type: u8,
    pub status: Status,
    /// Extras + key + value.
    pub body_len: u32,
    pub opaque: u32,
    pub cas: u64,
}

/// Appends a response header.
pub fn write_response_header(out: &mut Vec<u8>, h: &ResponseHeader) {
    // Same layout as a request but for the status in the vbucket's place.
    let as_req = RequestHeader {
        opcode: h.opcode,
        key_len: h.key_len,
        extras_len: h.extras_len,
        data_type: h.data_type,
        vbucket: h.status as u16,
        body_len: h.body_len,
        opaque: h.opaque,
        cas: h.cas,
    };
    write_header(out, RES_MAGIC, &as_req);
}

/// The response header at the start of `input`; `None` when it is shorter
/// than a header, has the wrong magic or a status memcached does not define.
pub fn parse_response_header(input: &[u8]) -> Option<ResponseHeader> {
    let h: &[u8; HEADER_LEN] = input.get(..HEADER_LEN)?.try_into().ok()?;
    if h[0] != RES_MAGIC {
        return None;
    }
    // Same layout as a request but for the status in the vbucket's place.
    let r = read_request_header(h)?;
    Some(ResponseHeader {
        opcode: r.opcode,
        key_len: r.key_len,
        extras_len: r.extras_len,
        data_type: r.data_type,
        status: Status::from_u16(r.vbucket)?,
        body_len: r.body_len,
        opaque: r.opaque,
        cas: r.cas,
    })
}

/// Appends a whole response: header, then extras, key and value. The
/// server's keys (at most 250 bytes) and bodies (at most `-I` plus a few
/// bytes) always fit the header's 16- and 32-bit lengths.
#[allow(clippy::too_many_arguments)] // one argument per wire field
pub fn write_response(
    out: &mut Vec<u8>,
    opcode: u8,
    status: Status,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body_len = extras.len() + key.len() + value.len();
    debug_assert!(key.len() <= usize::from(u16::MAX) && extras.len() <= usize::from(u8::MAX));
    debug_assert!(u32::try_from(body_len).is_ok());
    let h = ResponseHeader {
        opcode,
        key_len: key.len() as u16,
        extras_len: extras.len() as u8,
        data_type: 0,
        status,
        body_len: body_len as u32,
        opaque,
        cas,
    };
    out.reserve(HEADER_LEN + body_len);
    write_response_header(out, &h);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Appends an error response the way memcached writes one: no extras, no
/// key, [`status_message`] as the body, CAS 0.
pub fn write_error(out: &mut Vec<u8>, opcode: u8, status: Status, opaque: u32) {
    let msg = status_message(status).as_bytes();
    write_response(out, opcode, status, opaque, 0, &[], &[], msg);
}

/// Appends a header with `magic`; a response's status goes in `vbucket`.
fn write_header(out: &mut Vec<u8>, magic: u8, h: &RequestHeader) {
    let mut b = [0u8; HEADER_LEN];
    b[0] = magic;
    b[1] = h.opcode;
    b[2..4].copy_from_slice(&h.key_len.to_be_bytes());
    b[4] = h.extras_len;
    b[5] = h.data_type;
    b[6..8].copy_from_slice(&h.vbucket.to_be_bytes());
    b[8..12].copy_from_slice(&h.body_len.to_be_bytes());
    b[12..16].copy_from_slice(&h.opaque.to_be_bytes());
    b[16..24].copy_from_slice(&h.cas.to_be_bytes());
    out.extend_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A whole request frame.
    fn frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_request(&mut out, opcode, 0xa1b2_c3d4, 0, extras, key, value);
        out
    }

    fn parse(input: &[u8]) -> Frame<'_> {
        parse_request(input, 1 << 20)
    }

    /// Frames and decodes one request (the frame is leaked so the command
    /// can borrow from it; tests only).
    fn decoded(
        opcode: u8,
        extras: &[u8],
        key: &[u8],
        value: &[u8],
    ) -> Result<Command<'static>, Status> {
        let f: &'static [u8] = frame(opcode, extras, key, value).leak();
        match parse(f) {
            Frame::Request { req, len } => {
                assert_eq!(len, f.len());
                decode(&req)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_header_round_trip() {
        let h = RequestHeader {
            opcode: 0x01,
            key_len: 3,
            extras_len: 8,
            data_type: 0,
            vbucket: 0x0102,
            body_len: 12,
            opaque: 0xdead_beef,
            cas: 0x0102_0304_0506_0708,
        };
        let mut f = Vec::new();
        write_request_header(&mut f, &h);
        assert_eq!(f.len(), HEADER_LEN);
        assert_eq!(&f[..8], &[0x80, 0x01, 0, 3, 8, 0, 1, 2]);
        f.extend_from_slice(b"EEEEEEEEkeyv");
        f.extend_from_slice(b"next");
        let Frame::Request { req, len } = parse(&f) else {
            panic!("not a frame")
        };
        assert_eq!(len, 36);
        assert_eq!(read_request_header(&f), Some(h));
        assert_eq!(
            (
                req.opcode,
                req.op,
                req.key.len(),
                req.vbucket,
                req.opaque,
                req.cas
            ),
            (
                1,
                Some(Opcode::Set),
                3,
                0x0102,
                0xdead_beef,
                0x0102_0304_0506_0708
            )
        );
        assert_eq!(
            (req.extras, req.key, req.value),
            (&b"EEEEEEEE"[..], &b"key"[..], &b"v"[..])
        );
    }

    #[test]
    fn response_header_round_trip() {
        let h = ResponseHeader {
            opcode: 0x0d,
            key_len: 250,
            extras_len: 4,
            data_type: 0,
            status: Status::NonNumeric,
            body_len: 0x0100_0000,
            opaque: 7,
            cas: u64::MAX,
        };
        let mut out = Vec::new();
        write_response_header(&mut out, &h);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(&out[..8], &[0x81, 0x0d, 0, 250, 4, 0, 0, 6]);
        assert_eq!(parse_response_header(&out), Some(h));
        assert_eq!(parse_response_header(&out[..23]), None);
        out[7] = 0x07; // a status memcached does not define
        assert_eq!(parse_response_header(&out), None);
        out[7] = 0x06;
        out[0] = REQ_MAGIC;
        assert_eq!(parse_response_header(&out), None);
    }

    #[test]
    fn opcodes_and_statuses() {
        for b in 0..=255u8 {
            if let Some(op) = Opcode::from_u8(b) {
                assert_eq!(op as u8, b);
                assert!(!op.base().is_quiet());
                assert_eq!(Opcode::from_u8(op.base() as u8), Some(op.base()));
            }
        }
        let known = (0..=255u8)
            .filter(|&b| Opcode::from_u8(b).is_some())
            .count();
        assert_eq!(known, 36);
        assert_eq!(Opcode::from_u8(0x1f), None);
        assert_eq!(Opcode::from_u8(0x25), None);
        let quiet: Vec<u8> = (0..=255u8)
            .filter_map(Opcode::from_u8)
            .filter(|op| op.is_quiet())
            .map(|op| op as u8)
            .collect();
        assert_eq!(
            quiet,
            [0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e, 0x24]
        );
        assert_eq!(Opcode::GetKQ.base(), Opcode::GetK);
        assert_eq!(Opcode::Gatkq.base(), Opcode::Gatk);
        assert_eq!(Opcode::PrependQ.base(), Opcode::Prepend);
        for v in 0..=0xffffu16 {
            if let Some(s) = Status::from_u16(v) {
                assert_eq!(s as u16, v);
                assert_eq!(
                    status_message(s).is_empty(),
                    matches!(s, Status::NoError | Status::AuthContinue)
                );
            }
        }
    }

    #[test]
    fn incomplete_at_every_prefix() {
        let f = frame(0x01, &[0, 0, 0, 5, 0, 0, 0, 0], b"key", &[b'v'; 40]);
        for n in 0..f.len() {
            let need = if n < HEADER_LEN { HEADER_LEN } else { f.len() };
            assert_eq!(parse(&f[..n]), Frame::Incomplete { need }, "prefix {n}");
        }
        assert!(matches!(parse(&f), Frame::Request { len, .. } if len == f.len()));
        // A frame without body is whole with its header.
        let noop = frame(0x0a, &[], &[], &[]);
        assert!(matches!(parse(&noop[..23]), Frame::Incomplete { need: 24 }));
        assert!(matches!(parse(&noop), Frame::Request { len: 24, .. }));
    }

    #[test]
    fn pipelined_frames_one_after_another() {
        let mut input = Vec::new();
        input.extend(frame(0x11, &[0; 8], b"a", b"one"));
        input.extend(frame(0x0d, &[], b"a", &[]));
        input.extend(frame(0x09, &[], b"bb", &[]));
        input.extend(frame(0x05, &[0; 20], b"n", &[]));
        input.extend(frame(0x0a, &[], &[], &[]));
        input.extend_from_slice(&frame(0x00, &[], b"cut", &[])[..10]);
        let mut pos = 0;
        let mut ops = Vec::new();
        let mut keys = Vec::new();
        loop {
            match parse(&input[pos..]) {
                Frame::Request { req, len } => {
                    ops.push(req.op);
                    keys.push(req.key.to_vec());
                    assert!(decode(&req).is_ok());
                    pos += len;
                }
                Frame::Incomplete { need } => {
                    assert_eq!((need, input.len() - pos), (HEADER_LEN, 10));
                    break;
                }
                Frame::Invalid(e) => panic!("{e:?}"),
            }
        }
        use Opcode::*;
        assert_eq!(
            ops,
            [
                Some(SetQ),
                Some(GetKQ),
                Some(GetQ),
                Some(Increment),
                Some(Noop)
            ]
        );
        assert_eq!(keys, [&b"a"[..], b"a", b"bb", b"n", b""]);
    }

    #[test]
    fn bad_magic() {
        assert_eq!(
            parse(b"get foo\r\n"),
            Frame::Invalid(FrameError::BadMagic(b'g'))
        );
        assert_eq!(parse(&[0x81]), Frame::Invalid(FrameError::BadMagic(0x81)));
        let mut f = frame(0x0a, &[], &[], &[]);
        f[0] = 0x00;
        assert_eq!(parse(&f), Frame::Invalid(FrameError::BadMagic(0)));
        assert_eq!(parse(&[]), Frame::Incomplete { need: HEADER_LEN });
        assert_eq!(parse(&[0x80]), Frame::Incomplete { need: HEADER_LEN });
    }

    #[test]
    fn body_over_max_body() {
        let f = frame(0x01, &[0; 8], b"k", &[b'x'; 91]);
        assert!(matches!(
            parse_request(&f, 100),
            Frame::Request { len: 124, .. }
        ));
        let Frame::Invalid(FrameError::TooLarge(h)) = parse_request(&f, 99) else {
            panic!("accepted a body over max_body")
        };
        assert_eq!((h.opcode, h.body_len, h.opaque), (0x01, 100, 0xa1b2_c3d4));
        // Refused from the header alone, before the body is buffered.
        assert!(matches!(
            parse_request(&f[..24], 99),
            Frame::Invalid(FrameError::TooLarge(_))
        ));
        // The largest body the header can announce.
        let mut huge = f[..24].to_vec();
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        let need = HEADER_LEN + u32::MAX as usize;
        assert_eq!(parse_request(&huge, usize::MAX), Frame::Incomplete { need });
    }

    #[test]
    fn extras_and_key_longer_than_body() {
        let mut f = frame(0x01, &[0; 8], b"key", &[]);
        f[11] = 10; // body length 10 < 8 + 3
        let Frame::Invalid(FrameError::BadLengths(h)) = parse(&f) else {
            panic!("accepted extras + key > body")
        };
        assert_eq!((h.extras_len, h.key_len, h.body_len), (8, 3, 10));
        // Detected from the header alone, even with no body at all.
        assert!(matches!(
            parse(&f[..24]),
            Frame::Invalid(FrameError::BadLengths(_))
        ));
        f[11] = 11;
        assert!(matches!(parse(&f), Frame::Request { len: 35, .. }));
        let mut f = frame(0x00, &[], &[], &[]);
        f[2..4].copy_from_slice(&0xffffu16.to_be_bytes());
        assert!(matches!(
            parse(&f),
            Frame::Invalid(FrameError::BadLengths(_))
        ));
    }

    const INVALID: Result<(), Status> = Err(Status::InvalidArguments);

    /// Decodes and throws the command away: only whether it was accepted.
    fn accepts(opcode: u8, extras_len: usize, key: &[u8], value: &[u8]) -> Result<(), Status> {
        decoded(opcode, &vec![0; extras_len], key, value).map(|_| ())
    }

    #[test]
    fn get_family_rules() {
        for op in [0x00, 0x09, 0x0c, 0x0d] {
            assert_eq!(accepts(op, 0, b"k", b""), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 0, b"", b""), INVALID, "{op:#x} no key");
            assert_eq!(accepts(op, 4, b"k", b""), INVALID, "{op:#x} extras");
            assert_eq!(accepts(op, 0, b"k", b"v"), INVALID, "{op:#x} value");
        }
        assert_eq!(
            decoded(0x0d, &[], b"k", b""),
            Ok(Command::Get {
                key: b"k",
                quiet: true,
                with_key: true
            })
        );
        assert_eq!(
            decoded(0x00, &[], b"k", b""),
            Ok(Command::Get {
                key: b"k",
                quiet: false,
                with_key: false
            })
        );
    }

    #[test]
    fn touch_and_gat_rules() {
        for op in [0x1c, 0x1d, 0x1e, 0x23, 0x24] {
            assert_eq!(accepts(op, 4, b"k", b""), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 0, b"k", b""), INVALID, "{op:#x} no extras");
            assert_eq!(accepts(op, 8, b"k", b""), INVALID, "{op:#x} 8 extras");
            assert_eq!(accepts(op, 4, b"", b""), INVALID, "{op:#x} no key");
            assert_eq!(accepts(op, 4, b"k", b"v"), INVALID, "{op:#x} value");
        }
        let exp = 3600u32.to_be_bytes();
        assert_eq!(
            decoded(0x1c, &exp, b"k", b""),
            Ok(Command::Touch {
                key: b"k",
                exptime: 3600
            })
        );
        assert_eq!(
            decoded(0x24, &exp, b"k", b""),
            Ok(Command::Gat {
                key: b"k",
                exptime: 3600,
                quiet: true,
                with_key: true
            })
        );
        assert_eq!(
            decoded(0x1d, &exp, b"k", b""),
            Ok(Command::Gat {
                key: b"k",
                exptime: 3600,
                quiet: false,
                with_key: false
            })
        );
    }

    #[test]
    fn store_rules() {
        for op in [0x01, 0x02, 0x03, 0x11, 0x12, 0x13] {
            assert_eq!(accepts(op, 8, b"k", b"v"), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 8, b"k", b""), Ok(()), "{op:#x} empty value");
            assert_eq!(accepts(op, 0, b"k", b"v"), INVALID, "{op:#x} no extras");
            assert_eq!(accepts(op, 4, b"k", b"v"), INVALID, "{op:#x} 4 extras");
            assert_eq!(accepts(op, 8, b"", b"v"), INVALID, "{op:#x} no key");
        }
        for op in [0x0e, 0x0f, 0x19, 0x1a] {
            assert_eq!(accepts(op, 0, b"k", b"v"), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 0, b"k", b""), Ok(()), "{op:#x} empty value");
            assert_eq!(accepts(op, 8, b"k", b"v"), INVALID, "{op:#x} extras");
            assert_eq!(accepts(op, 0, b"", b"v"), INVALID, "{op:#x} no key");
        }
        let mut f = Vec::new();
        write_request(
            &mut f,
            0x12,
            1,
            99,
            &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0x0e, 0x10],
            b"key",
            b"val",
        );
        let Frame::Request { req, .. } = parse(&f) else {
            panic!()
        };
        assert_eq!(
            decode(&req),
            Ok(Command::Store {
                mode: SetMode::Add,
                key: b"key",
                value: b"val",
                flags: 0xdead_beef,
                exptime: 3600,
                cas: 99,
                quiet: true,
            })
        );
        assert_eq!(
            decoded(0x0f, &[], b"k", b"pre"),
            Ok(Command::Store {
                mode: SetMode::Prepend,
                key: b"k",
                value: b"pre",
                flags: 0,
                exptime: 0,
                cas: 0,
                quiet: false,
            })
        );
    }

    #[test]
    fn delete_and_arith_rules() {
        for op in [0x04, 0x14] {
            assert_eq!(accepts(op, 0, b"k", b""), Ok(()), "{op:#x}");
            assert_eq!(
                accepts(op, 4, b"k", b""),
                INVALID,
                "{op:#x} old exptime extras"
            );
            assert_eq!(accepts(op, 0, b"", b""), INVALID, "{op:#x} no key");
            assert_eq!(accepts(op, 0, b"k", b"v"), INVALID, "{op:#x} value");
        }
        for op in [0x05, 0x06, 0x15, 0x16] {
            assert_eq!(accepts(op, 20, b"k", b""), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 8, b"k", b""), INVALID, "{op:#x} 8 extras");
            assert_eq!(accepts(op, 0, b"k", b""), INVALID, "{op:#x} no extras");
            assert_eq!(accepts(op, 20, b"", b""), INVALID, "{op:#x} no key");
            assert_eq!(accepts(op, 20, b"k", b"1"), INVALID, "{op:#x} value");
        }
        let mut e = Vec::new();
        e.extend_from_slice(&5u64.to_be_bytes());
        e.extend_from_slice(&42u64.to_be_bytes());
        e.extend_from_slice(&ARITH_NO_CREATE.to_be_bytes());
        assert_eq!(
            decoded(0x16, &e, b"n", b""),
            Ok(Command::Arith {
                incr: false,
                key: b"n",
                delta: 5,
                initial: 42,
                exptime: ARITH_NO_CREATE,
                cas: 0,
                quiet: true,
            })
        );
    }

    #[test]
    fn admin_rules() {
        // Noop, Version, Quit, QuitQ, SaslListMechs: nothing at all.
        for op in [0x0a, 0x0b, 0x07, 0x17, 0x20] {
            assert_eq!(accepts(op, 0, b"", b""), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 4, b"", b""), INVALID, "{op:#x} extras");
            assert_eq!(accepts(op, 0, b"k", b""), INVALID, "{op:#x} key");
            assert_eq!(accepts(op, 0, b"", b"v"), INVALID, "{op:#x} value");
        }
        assert_eq!(
            decoded(0x17, &[], b"", b""),
            Ok(Command::Quit { quiet: true })
        );
        for op in [0x08, 0x18] {
            assert_eq!(accepts(op, 0, b"", b""), Ok(()), "{op:#x}");
            assert_eq!(accepts(op, 4, b"", b""), Ok(()), "{op:#x} exptime");
            assert_eq!(accepts(op, 2, b"", b""), INVALID, "{op:#x} 2 extras");
            assert_eq!(accepts(op, 8, b"", b""), INVALID, "{op:#x} 8 extras");
            assert_eq!(accepts(op, 0, b"k", b""), INVALID, "{op:#x} key");
            assert_eq!(accepts(op, 4, b"", b"v"), INVALID, "{op:#x} value");
        }
        assert_eq!(
            decoded(0x18, &60u32.to_be_bytes(), b"", b""),
            Ok(Command::Flush {
                exptime: 60,
                quiet: true
            })
        );
        assert_eq!(
            decoded(0x08, &[], b"", b""),
            Ok(Command::Flush {
                exptime: 0,
                quiet: false
            })
        );
        assert_eq!(decoded(0x10, &[], b"", b""), Ok(Command::Stat { key: b"" }));
        assert_eq!(
            decoded(0x10, &[], b"items", b""),
            Ok(Command::Stat { key: b"items" })
        );
        assert_eq!(accepts(0x10, 4, b"", b""), INVALID, "stat extras");
        assert_eq!(accepts(0x10, 0, b"items", b"v"), INVALID, "stat value");
        assert_eq!(
            decoded(0x1b, &[0, 0, 0, 2], b"", b""),
            Ok(Command::Verbosity { level: 2 })
        );
        assert_eq!(accepts(0x1b, 0, b"", b""), INVALID, "verbosity no extras");
        assert_eq!(
            decoded(0x22, &[], b"PLAIN", b"\0u\0p"),
            Ok(Command::Sasl {
                step: true,
                mech: b"PLAIN",
                data: b"\0u\0p"
            })
        );
        assert_eq!(
            accepts(0x21, 0, b"", b"x"),
            INVALID,
            "sasl without mechanism"
        );
        assert_eq!(accepts(0x21, 4, b"PLAIN", b"x"), INVALID, "sasl extras");
    }

    #[test]
    fn unknown_opcodes() {
        for op in [0x1f, 0x25, 0x30, 0x3c, 0x7f, 0xff] {
            assert_eq!(
                accepts(op, 0, b"", b""),
                Err(Status::UnknownCommand),
                "{op:#x}"
            );
            assert_eq!(
                accepts(op, 3, b"kk", b"vvv"),
                Err(Status::UnknownCommand),
                "{op:#x}"
            );
        }
    }

    #[test]
    fn key_length_250_and_251() {
        let k250 = [b'k'; 250];
        let k251 = [b'k'; 251];
        assert_eq!(accepts(0x00, 0, &k250, b""), Ok(()));
        assert_eq!(accepts(0x00, 0, &k251, b""), INVALID);
        assert_eq!(accepts(0x01, 8, &k250, b"v"), Ok(()));
        assert_eq!(accepts(0x01, 8, &k251, b"v"), INVALID);
        // Checked before the opcode, as memcached does.
        assert_eq!(accepts(0x30, 0, &k251, b""), INVALID);
        assert_eq!(accepts(0x10, 0, &k251, b""), INVALID);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Responses captured from memcached 1.6.18 (its binary protocol over
    /// TCP, replies hex-dumped), rebuilt here field by field.
    #[test]
    fn responses_match_memcached_byte_for_byte() {
        let flags = [0xde, 0xad, 0xbe, 0xef];
        let mut out = Vec::new();
        let mut check = |name: &str, captured: &str, write: &dyn Fn(&mut Vec<u8>)| {
            out.clear();
            write(&mut out);
            assert_eq!(out, unhex(captured), "{name}");
            assert_eq!(
                parse_response_header(&out).map(|h| h.body_len as usize + HEADER_LEN),
                Some(out.len())
            );
        };
        check(
            "set stored",
            "810100000000000000000000112233440000000000000001",
            &|o| write_response(o, 0x01, Status::NoError, 0x1122_3344, 1, &[], &[], &[]),
        );
        check(
            "get hit",
            "810000000400000000000007000000550000000000000001deadbeef626172",
            &|o| write_response(o, 0x00, Status::NoError, 0x55, 1, &flags, &[], b"bar"),
        );
        check(
            "getk hit",
            "810c0003040000000000000a000000560000000000000001deadbeef666f6f626172",
            &|o| write_response(o, 0x0c, Status::NoError, 0x56, 1, &flags, b"foo", b"bar"),
        );
        // A quiet opcode is echoed as sent.
        check(
            "getkq hit",
            "810d0003040000000000000a000000030000000000000001deadbeef666f6f626172",
            &|o| write_response(o, 0x0d, Status::NoError, 3, 1, &flags, b"foo", b"bar"),
        );
        // GetK's miss carries the key and no message.
        check(
            "getk miss",
            "810c000400000001000000040000000800000000000000006e6f7065",
            &|o| write_response(o, 0x0c, Status::KeyNotFound, 8, 0, &[], b"nope", &[]),
        );
        check(
            "touch hit",
            "811c000004000000000000040000001e0000000000000001deadbeef",
            &|o| write_response(o, 0x1c, Status::NoError, 0x1e, 1, &flags, &[], &[]),
        );
        check(
            "incr",
            "8105000000000000000000080000000e0000000000000003000000000000000f",
            &|o| {
                write_response(
                    o,
                    0x05,
                    Status::NoError,
                    0x0e,
                    3,
                    &[],
                    &[],
                    &15u64.to_be_bytes(),
                )
            },
        );
        check(
            "version",
            "810b000000000000000000060000000d0000000000000000312e362e3138",
            &|o| write_response(o, 0x0b, Status::NoError, 0x0d, 0, &[], &[], b"1.6.18"),
        );
        check(
            "noop",
            "810a000000000000000000000000000c0000000000000000",
            &|o| write_response(o, 0x0a, Status::NoError, 0x0c, 0, &[], &[], &[]),
        );
        // Errors: the captured header, then the body memcached sent (its text).
        let errors = [
            (
                "get miss",
                0x00,
                Status::KeyNotFound,
                7,
                "810000000000000100000009000000070000000000000000",
                "Not found",
            ),
            (
                "add exists",
                0x02,
                Status::KeyExists,
                9,
                "810200000000000200000014000000090000000000000000",
                "Data exists for key.",
            ),
            (
                "set too large",
                0x01,
                Status::ValueTooLarge,
                0x50,
                "81010000000000030000000a000000500000000000000000",
                "Too large.",
            ),
            (
                "key of 251 bytes",
                0x00,
                Status::InvalidArguments,
                0x16,
                "810000000000000400000011000000160000000000000000",
                "Invalid arguments",
            ),
            (
                "appendq missing",
                0x19,
                Status::ItemNotStored,
                0x52,
                "81190000000000050000000b000000520000000000000000",
                "Not stored.",
            ),
            (
                "incr non-numeric",
                0x05,
                Status::NonNumeric,
                0x0f,
                "81050000000000060000002e0000000f0000000000000000",
                "Non-numeric server-side value for incr or decr",
            ),
            (
                "flush under -F",
                0x08,
                Status::AuthError,
                0x42,
                "81080000000000200000000d000000420000000000000000",
                "Auth failure.",
            ),
            (
                "unknown opcode",
                0x30,
                Status::UnknownCommand,
                0x17,
                "81300000000000810000000f000000170000000000000000",
                "Unknown command",
            ),
        ];
        for (name, op, status, opaque, header, body) in errors {
            let captured = format!("{header}{}", hex(body.as_bytes()));
            check(name, &captured, &|o| write_error(o, op, status, opaque));
            assert_eq!(status_message(status), body);
        }
    }

    /// One valid frame of each shape, for mutation.
    fn sample_frames() -> Vec<Vec<u8>> {
        vec![
            frame(0x01, &[0, 0, 0, 1, 0, 0, 0, 0], b"key", b"value"),
            frame(0x0c, &[], b"key", &[]),
            frame(0x09, &[], b"k", &[]),
            frame(0x05, &[1; 20], b"n", &[]),
            frame(0x08, &[0; 4], &[], &[]),
            frame(0x0a, &[], &[], &[]),
            frame(0x10, &[], b"items", &[]),
            frame(0x1c, &[0; 4], b"k", &[]),
            frame(0x0e, &[], b"k", b"tail"),
            frame(0x21, &[], b"PLAIN", b"\0u\0p"),
            frame(0x30, &[1, 2], b"kk", b"vvv"),
        ]
    }

    /// Frames (and decodes) every request in `input` the way a server
    /// would, checking each frame's length against what it was given.
    fn walk(input: &[u8], max_body: usize) {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            match parse_request(rest, max_body) {
                Frame::Request { req, len } => {
                    assert!(
                        (HEADER_LEN..=rest.len()).contains(&len),
                        "len {len} of {}",
                        rest.len()
                    );
                    let body = req.extras.len() + req.key.len() + req.value.len();
                    assert_eq!(HEADER_LEN + body, len);
                    assert!(body <= max_body);
                    if let Ok(Command::Get { key, .. }) = decode(&req) {
                        assert!(!key.is_empty() && key.len() <= KEY_MAX);
                    }
                    pos += len;
                }
                Frame::Incomplete { need } => {
                    assert!(need > rest.len() && need >= HEADER_LEN);
                    break;
                }
                Frame::Invalid(_) => break,
            }
        }
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 512,
            // No regression files next to the sources; failures print their input.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn random_bytes_never_panic(
            mut input in proptest::collection::vec(any::<u8>(), 0..200),
            magic in any::<bool>(),
            max_body in 0usize..300,
        ) {
            // Most random first bytes are a bad magic; often get past it.
            if magic && !input.is_empty() {
                input[0] = REQ_MAGIC;
            }
            walk(&input, max_body);
        }

        #[test]
        fn mutated_frames_never_panic(
            picks in proptest::collection::vec(any::<usize>(), 1..4),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
            max_body in 0usize..300,
        ) {
            let frames = sample_frames();
            let mut input: Vec<u8> =
                picks.iter().flat_map(|p| frames[p % frames.len()].clone()).collect();
            for (at, b) in edits {
                let n = input.len();
                input[at % n] = b;
            }
            input.truncate(cut % (input.len() + 1));
            walk(&input, max_body);
        }
    }
}
