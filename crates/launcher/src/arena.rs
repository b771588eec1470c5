//! A bump allocator for the launcher binary. The launcher allocates a few hundred small
//! blocks and then `execve`s, so freeing is pointless work: small blocks come from a
//! static arena (untouched pages cost no memory), large ones and any overflow go to the
//! system allocator. This removes most of musl malloc's cost from start-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Blocks at least this large skip the arena (e.g. big env files), so they can be freed.
const LARGE: usize = 16 * 1024;

pub struct Arena<const N: usize> {
    memory: UnsafeCell<[u8; N]>,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

// SAFETY: the arena hands out disjoint ranges, reserved with an atomic compare-exchange,
// so concurrent callers are fine (the launcher itself runs one thread: exec.d children are
// started with posix_spawn, which creates no threads in this process).
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Arena {
            memory: UnsafeCell::new([0; N]),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.memory.get() as usize
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        (self.base()..self.base() + N).contains(&(ptr as usize))
    }

    /// Reserves `layout` in the arena, or returns null when it does not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + current).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= N) else {
                return std::ptr::null_mut();
            };
            match self.next.compare_exchange_weak(
                current,
                end,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (base + start) as *mut u8,
                Err(seen) => current = seen,
            }
        }
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < LARGE {
            let p = self.bump(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's valid layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.contains(ptr) {
            // SAFETY: not from the arena, so it came from System with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.contains(ptr) {
            // SAFETY: a System block with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Grow or shrink in place when this is the most recent arena block.
        let start = ptr as usize - self.base();
        let end = start + layout.size();
        if new_size < LARGE && start + new_size <= N {
            let grown = self.next.compare_exchange(
                end,
                start + new_size,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            if grown.is_ok() {
                return ptr;
            }
        }
        if new_size <= layout.size() {
            // Not the last block: shrinking in place is still valid, and frees nothing.
            return ptr;
        }
        // SAFETY: the new layout keeps the alignment and has a non-zero valid size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for alloc.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and distinct.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_aligns_grows_in_place_and_overflows_to_system() {
        let arena: Box<Arena<4096>> = Box::default();
        unsafe {
            let a = arena.alloc(Layout::from_size_align(3, 1).unwrap());
            let b = arena.alloc(Layout::from_size_align(8, 8).unwrap());
            assert!(arena.contains(a) && arena.contains(b));
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 3);
            b.write_bytes(7, 8);
            // b is the last block: growing keeps the address and the contents.
            let b2 = arena.realloc(b, Layout::from_size_align(8, 8).unwrap(), 64);
            assert_eq!(b2, b);
            assert_eq!(*b2.add(7), 7);
            // a is not last: growing moves and copies.
            a.write_bytes(1, 3);
            let a2 = arena.realloc(a, Layout::from_size_align(3, 1).unwrap(), 16);
            assert_ne!(a2, a);
            assert_eq!(std::slice::from_raw_parts(a2, 3), &[1, 1, 1]);
            // Large and overflowing blocks come from System and can be freed.
            let big_layout = Layout::from_size_align(LARGE, 8).unwrap();
            let big = arena.alloc(big_layout);
            assert!(!arena.contains(big));
            arena.dealloc(big, big_layout);
            let rest = Layout::from_size_align(4090, 1).unwrap();
            let over = arena.alloc(rest);
            assert!(!arena.contains(over));
            arena.dealloc(over, rest);
            // Growing an arena block past the arena moves it to System.
            let moved = arena.realloc(a2, Layout::from_size_align(16, 1).unwrap(), LARGE * 2);
            assert!(!arena.contains(moved));
            assert_eq!(std::slice::from_raw_parts(moved, 3), &[1, 1, 1]);
            arena.dealloc(moved, Layout::from_size_align(LARGE * 2, 1).unwrap());
        }
    }

    #[test]
    fn shrinking_and_big_alignments() {
        let arena: Box<Arena<8192>> = Box::default();
        unsafe {
            let a = arena.alloc(Layout::from_size_align(64, 8).unwrap());
            let b = arena.alloc(Layout::from_size_align(8, 8).unwrap());
            // a is not last: shrinking keeps it where it is.
            assert_eq!(
                arena.realloc(a, Layout::from_size_align(64, 8).unwrap(), 16),
                a
            );
            // b is last: shrinking gives the tail back to the next allocation.
            let b2 = arena.realloc(b, Layout::from_size_align(8, 8).unwrap(), 1);
            assert_eq!(b2, b);
            let c = arena.alloc(Layout::from_size_align(1, 1).unwrap());
            assert_eq!(c as usize, b as usize + 1);
            // A page-aligned block is aligned, or comes from System when it cannot fit.
            let page = Layout::from_size_align(16, 4096).unwrap();
            let p = arena.alloc(page);
            assert_eq!(p as usize % 4096, 0);
            let huge_align = Layout::from_size_align(16, 1 << 20).unwrap();
            let q = arena.alloc(huge_align);
            assert_eq!(q as usize % (1 << 20), 0);
            assert!(!arena.contains(q));
            arena.dealloc(q, huge_align);
        }
    }

    #[test]
    fn concurrent_allocations_are_disjoint_and_aligned() {
        // The launcher is single-threaded, but GlobalAlloc must be Sync-correct anyway.
        let arena: &'static Arena<{ 64 * 1024 }> = Box::leak(Box::default());
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut blocks = Vec::new();
                    for i in 0..200usize {
                        let layout =
                            Layout::from_size_align(1 + (i * 7) % 40, 1 << (i % 4)).unwrap();
                        // SAFETY: a valid non-zero layout; the block is written within bounds.
                        unsafe {
                            let p = arena.alloc(layout);
                            assert!(!p.is_null());
                            assert_eq!(p as usize % layout.align(), 0);
                            p.write_bytes(t, layout.size());
                            blocks.push((p as usize, layout));
                        }
                    }
                    blocks
                })
            })
            .collect();
        let mut all: Vec<(usize, Layout, u8)> = Vec::new();
        for (t, handle) in threads.into_iter().enumerate() {
            for (p, layout) in handle.join().unwrap() {
                all.push((p, layout, t as u8));
            }
        }
        all.sort_by_key(|b| b.0);
        for pair in all.windows(2) {
            assert!(pair[0].0 + pair[0].1.size() <= pair[1].0, "overlap");
        }
        for (p, layout, t) in all {
            // SAFETY: p is a live block of layout.size() bytes.
            let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, layout.size()) };
            assert!(
                bytes.iter().all(|&b| b == t),
                "another thread wrote into this block"
            );
            // SAFETY: allocated above with this layout.
            unsafe { arena.dealloc(p as *mut u8, layout) };
        }
    }
}
