//! The arena: one large anonymous mapping reserved up front (virtual only,
//! `MAP_NORESERVE`) from which 1 MB (or `-I`) pages are handed to slab
//! classes. Reserving address space once lets items refer to each other with
//! 32-bit references (offset / 8) instead of 64-bit pointers, which keeps
//! item headers small. Physical memory is only used for pages actually
//! taken, and the page count is capped by `-m`. The reservation starts on a
//! 2 MB boundary and is advised for transparent huge pages (`-o
//! no_hugepages` turns that off), so two slab pages share one TLB entry.

use std::io;

/// A 32-bit reference to an 8-byte aligned spot in the arena; 0 is null.
pub type Ref = u32;
pub const NIL: Ref = 0;

/// Largest reservation: 2^32 refs of 8 bytes.
const MAX_RESERVE: usize = 32 << 30;

pub struct Arena {
    base: *mut u8,
    len: usize,
    page_size: usize,
    /// The mapping as made (it starts up to `HUGE_PAGE` before `base`).
    map: *mut u8,
    map_len: usize,
    /// First page handed out (see [`Arena::first_page`]).
    first_page: u32,
}

/// Transparent huge page size on x86-64 and arm64 (4 KB base pages).
const HUGE_PAGE: usize = 2 << 20;

// SAFETY: the arena is plain memory; every access to its contents is
// synchronised by the store's locks (see engine.rs for the rules).
unsafe impl Send for Arena {}
unsafe impl Sync for Arena {}

impl Arena {
    /// Reserves address space for up to `MAX_RESERVE` bytes of pages,
    /// asking for transparent huge pages if `huge_pages`.
    pub fn new(page_size: usize, huge_pages: bool) -> io::Result<Arena> {
        let mut len = MAX_RESERVE;
        loop {
            let map_len = len + HUGE_PAGE;
            // SAFETY: anonymous private mapping, no file, no fixed address.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                let map = p as *mut u8;
                let base = map.wrapping_add((HUGE_PAGE - map as usize % HUGE_PAGE) % HUGE_PAGE);
                if huge_pages {
                    // Items are read at random over all of memory, and a
                    // 100 KB value spans 25 small pages: with 4 KB pages
                    // lookups and the kernel's copies keep missing the TLB.
                    // Where THP is off ("never") the advice changes nothing.
                    // SAFETY: advice on our own mapping.
                    unsafe {
                        libc::madvise(base as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
                    }
                }
                // Page 0 is never used (no chunk may have reference 0). With
                // huge pages, neither are the pages sharing its huge page:
                // the first one used would otherwise make the kernel back
                // the unused part too (1 MB more RSS with 1 MB pages).
                let first_page = if huge_pages {
                    (HUGE_PAGE / page_size).max(1) as u32
                } else {
                    1
                };
                return Ok(Arena {
                    base,
                    len,
                    page_size,
                    map,
                    map_len,
                    first_page,
                });
            }
            if len <= page_size * 16 {
                return Err(io::Error::last_os_error());
            }
            len /= 2;
        }
    }

    /// Pages that fit in the reservation. Page 0 is never handed out so that
    /// no chunk ever has reference 0.
    pub fn max_pages(&self) -> usize {
        self.len / self.page_size
    }

    /// The first page handed out: 1, or with huge pages the first whose huge
    /// page page 0 does not share.
    pub fn first_page(&self) -> u32 {
        self.first_page
    }

    /// Pages that can be handed out: from `first_page` to the end.
    pub fn usable_pages(&self) -> usize {
        self.max_pages().saturating_sub(self.first_page as usize)
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Address of a page (index >= 1).
    #[inline]
    pub fn page_ptr(&self, page: u32) -> *mut u8 {
        debug_assert!((page as usize) < self.max_pages());
        // SAFETY: within the reservation (checked by the caller's page limit).
        unsafe { self.base.add(page as usize * self.page_size) }
    }

    #[inline]
    pub fn page_of(&self, r: Ref) -> u32 {
        ((r as usize * 8) / self.page_size) as u32
    }

    #[inline]
    pub fn ptr(&self, r: Ref) -> *mut u8 {
        debug_assert!(r != NIL && (r as usize) * 8 < self.len);
        // SAFETY: refs are only made by `to_ref` from addresses inside the arena.
        unsafe { self.base.add(r as usize * 8) }
    }

    #[inline]
    pub fn to_ref(&self, p: *const u8) -> Ref {
        let off = p as usize - self.base as usize;
        debug_assert!(off.is_multiple_of(8) && off < self.len);
        (off / 8) as Ref
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; the store is gone.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.map_len);
        }
    }
}
