//! Large data blocks read straight into their item (memcached's
//! `conn_nread`).
//!
//! When at least [`NREAD_MIN`] bytes of a storage command's data block have
//! yet to arrive, the handler reserves the item first
//! (unlinked, invisible), copies the part already buffered, and parks an
//! [`Nread`] in the session. The server then reads the rest of the value
//! from the socket directly into the item's memory ([`Session::nread_space`],
//! [`Session::nread_advance`]); the two terminator bytes and whatever
//! follows arrive in its ordinary buffer and reach [`Nread::feed`] through
//! `process`. Once complete, the request line is handled again with the
//! filled item, so every check and reply is the one the buffered path
//! makes, and the store's semantics (add, replace, cas) are evaluated at
//! that moment. Dropping an unfinished `Nread` (the client went away)
//! frees the item.

use super::{Session, Step};
use crate::storage::Reserved;

/// A data block is read straight into its item when at least this much of
/// it has yet to arrive: below it the copy from the read buffer costs less
/// than the extra `read` (the buffer batches pipelined requests, while a
/// read into the item stops at the item's end).
pub const NREAD_MIN: usize = 16 * 1024;

/// A data block being read into its reserved item.
#[derive(Debug)]
pub struct Nread {
    /// The request line (without its terminator), handled again at the end.
    pub(super) line: Vec<u8>,
    pub(super) item: Reserved,
    /// Value bytes written so far.
    filled: usize,
    /// The two bytes after the value (should be "\r\n").
    pub(super) tail: [u8; 2],
    tail_len: usize,
}

impl Nread {
    /// Takes input bytes: first the rest of the value, then the two
    /// terminator bytes. Returns how many bytes it took.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let n = self.item.write_at(self.filled, input);
        self.filled += n;
        let mut taken = n;
        while self.filled == self.item.len() && self.tail_len < 2 && taken < input.len() {
            self.tail[self.tail_len] = input[taken];
            self.tail_len += 1;
            taken += 1;
        }
        taken
    }

    /// Value and terminator are in.
    pub fn complete(&self) -> bool {
        self.filled == self.item.len() && self.tail_len == 2
    }
}

/// Where a handler may park an [`Nread`]: the session's slot, or None when
/// the server cannot read into items (UDP, tests without a socket).
pub type Slot<'s> = Option<&'s mut Option<Box<Nread>>>;

/// Starts reading a data block of `len` bytes (plus "\r\n") into an item,
/// if the server supports it and the block is large: `rest` (the input
/// after `line`, shorter than the block) is taken into the item. Returns
/// the step that consumes it, or None when the caller should wait for the
/// whole block in the buffer as usual (little of it missing, no slot, or
/// `reserve` found no memory: the ordinary path then answers exactly as
/// before).
pub fn begin(
    slot: Slot,
    line: &[u8],
    rest: &[u8],
    len: usize,
    reserve: impl FnOnce() -> Option<Reserved>,
) -> Option<Step> {
    let slot = slot?;
    if (len + 2).saturating_sub(rest.len()) < NREAD_MIN {
        return None;
    }
    let item = reserve()?;
    debug_assert_eq!(item.len(), len);
    let mut nr = Box::new(Nread {
        line: line.to_vec(),
        item,
        filled: 0,
        tail: [0; 2],
        tail_len: 0,
    });
    let taken = nr.feed(rest);
    debug_assert_eq!(taken, rest.len());
    *slot = Some(nr);
    Some(Step::Done(taken))
}

impl Session {
    /// Where the server may read value bytes of a pending data block
    /// straight from its socket: the unfilled part of the item's current
    /// piece. None when there is no such block or its value is complete
    /// (the terminator is read into the ordinary buffer).
    pub fn nread_space(&mut self) -> Option<&mut [u8]> {
        let nr = self.nread.as_mut()?;
        let space = nr.item.space_at(nr.filled);
        (!space.is_empty()).then_some(space)
    }

    /// `n` bytes were read into [`Session::nread_space`].
    pub fn nread_advance(&mut self, n: usize) {
        if let Some(nr) = self.nread.as_mut() {
            nr.filled = (nr.filled + n).min(nr.item.len());
        }
    }
}
