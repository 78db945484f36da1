//! Protocol framing: bytes from a connection in, reply bytes out. Pure
//! functions over byte slices; no sockets here, so every parser is testable
//! on its own. The server calls [`process`] whenever new bytes arrive.

pub mod meta;

use crate::command::Ctx;

/// Per-connection protocol state (e.g. a data block still being swallowed).
#[derive(Default, Debug)]
pub struct Session {}

/// Outcome of handling one request whose line starts the input given to a
/// handler (text or meta). Lets each protocol handle its own data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The request (e.g. its data block) is not complete yet; nothing consumed.
    NeedMore,
    /// Request handled; this many input bytes consumed (line and data block).
    Done(usize),
    /// Consumed this many bytes, and the next `swallow` bytes of input must be
    /// discarded (a rejected data block not fully received yet).
    Swallow { consumed: usize, swallow: usize },
    /// Reply written; close the connection after flushing it.
    Close(usize),
}

/// What `process` did with the input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processed {
    /// Bytes of input fully handled; the server drops them from its buffer.
    pub consumed: usize,
    /// Close the connection once `out` has been written (`quit`, fatal errors).
    pub close: bool,
}

/// Handles every complete request in `input`, appending replies to `out`.
/// Stops early once `out` holds more than `out_limit` bytes so a client that
/// does not read cannot grow server memory without bound.
pub fn process(
    _session: &mut Session,
    input: &[u8],
    out: &mut Vec<u8>,
    _ctx: &Ctx,
    _out_limit: usize,
) -> Processed {
    // Placeholder until the text protocol lands: answer ERROR per line.
    let mut consumed = 0;
    while let Some(nl) = memchr::memchr(b'\n', &input[consumed..]) {
        consumed += nl + 1;
        out.extend_from_slice(b"ERROR\r\n");
    }
    Processed {
        consumed,
        close: false,
    }
}
