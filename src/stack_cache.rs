//! A per-thread cache of finished coroutines, so that create, run, drop in
//! a loop costs no more than rearming a stack that is already set up.
//!
//! A [`Coroutine`](crate::Coroutine) whose frames are gone (its closure
//! returned, panicked or was unwound, or never started) is not destroyed
//! when dropped: its C coroutine, with the stack it sits on, is kept here,
//! and the next coroutine created on this thread with the same requested
//! stack size and a block that fits is started on it
//! (`ucoro__crate_recycle`), instead of giving the stack back to the C
//! library's pool and taking it again (`ucoro_create`, `ucoro_destroy`:
//! the pool, the record's owner, the continuation's set-up, each with its
//! checks). A leaked coroutine (live frames) never comes here.
//!
//! The block `Coroutine::create` reserves next to the C struct starts with
//! a [`Tag`] saying what the coroutine was made for; the `Inner` block
//! follows it, with room rounded up ([`capacity_for`]) so that closures of
//! different small sizes share cached coroutines.
//!
//! What a cached coroutine looks like from outside: an exited coroutine
//! (gdb's `ucoro list` skips it, the C API refuses to switch into it), whose
//! stack is in use (it counts in the C library's stack records) and keeps
//! the pages its last run touched. At most [`CAPACITY`] are kept per
//! thread; they are destroyed when the thread exits, or when a stack
//! cannot be allocated (the retry in [`create`] then has their room). Where
//! the C library cannot rearm a stack (sanitizer builds: AddressSanitizer
//! and ThreadSanitizer keep per-stack state that only a fresh stack
//! resets), the first refusal turns the thread's cache off.

use std::cell::Cell;
use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::NonNull;

use crate::{arch, sys};

/// How many finished coroutines a thread keeps. A few cover a loop that
/// creates a coroutine at a time, or one nested in another, or a handful
/// alive at once; more would only hold memory (each keeps the pages its
/// run touched, and its stack's address space), while every drop beyond
/// them still goes to the C library's own pool, which makes no system call
/// either.
const CAPACITY: usize = 4;

/// Blocks up to this size are reserved as this size, so that small
/// closures of any size reuse each other's coroutines.
const MIN_BLOCK: usize = 256;

/// Blocks up to this size are rounded up to a power of two; larger ones
/// are reserved as they are. Small enough that rounding never turns a
/// closure that fits into one that does not: with the safe API's 64 KiB
/// minimum stack, the C library refuses only blocks over half of it.
const MAX_ROUNDED_BLOCK: usize = 16 << 10;

/// Written at the start of the block next to the C struct: what the
/// coroutine was made for.
#[repr(C)]
#[derive(Clone, Copy)]
struct Tag {
    /// The stack size asked of `ucoro_create` (0: the default).
    requested: usize,
    /// The bytes reserved for the `Inner` block after the tag.
    capacity: usize,
}

/// The tag's share of the block, keeping what follows it 16-byte aligned
/// as the block itself is.
const TAG_SIZE: usize = 16;
const _: () = assert!(size_of::<Tag>() <= TAG_SIZE);

/// Where `ucoro_create` puts the block it reserves: right after the C
/// struct, rounded up to 16 bytes (csrc/coroutine_ucontext.c).
const BLOCK_OFFSET: usize = (size_of::<sys::coroutine>() + 15) & !15;

/// The room to reserve for an `Inner` block of `needed` bytes.
fn capacity_for(needed: usize) -> usize {
    if needed <= MIN_BLOCK {
        MIN_BLOCK
    } else if needed <= MAX_ROUNDED_BLOCK {
        needed.next_power_of_two()
    } else {
        needed
    }
}

/// The `extra` to ask `ucoro_create` for, for an `Inner` block of `needed`
/// bytes (saturating: too large fails there, as it would have).
pub(crate) fn extra_for(needed: usize) -> usize {
    capacity_for(needed).saturating_add(TAG_SIZE)
}

/// The tag of a coroutine made through [`create`].
///
/// # Safety
/// `co` was made by `create` and is not destroyed.
unsafe fn tag_of(co: *mut sys::coroutine) -> *mut Tag {
    co.cast::<u8>().wrapping_add(BLOCK_OFFSET).cast()
}

/// Where the `Inner` block of a coroutine made through [`create`] starts
/// (16-byte aligned; its owner aligns further).
fn area_of(co: *mut sys::coroutine) -> *mut c_void {
    co.cast::<u8>().wrapping_add(BLOCK_OFFSET + TAG_SIZE).cast()
}

/// The entry function of a Rust coroutine.
pub(crate) type Entry = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

extern "C" {
    /// Makes `co` (made by `ucoro_create`, exited or never switched into,
    /// neither running nor waiting) start `entry(arg)` afresh on the same
    /// stack; 1, or 0 with nothing changed where it cannot (sanitizers).
    fn ucoro__crate_recycle(co: *mut sys::coroutine, entry: Option<Entry>, arg: *mut c_void)
        -> i32;
}

/// This thread's finished coroutines, newest last. Needs no destructor of
/// its own, so that reaching it is only an offset from the thread pointer
/// (no registration check); [`Closer`] empties it at thread exit.
struct Cache {
    entries: [Cell<*mut sys::coroutine>; CAPACITY],
    len: Cell<usize>,
    /// How many it may keep: CAPACITY while open, 0 before the closer is
    /// registered and after it ran, or when the C library could not rearm
    /// a coroutine.
    limit: Cell<usize>,
    state: Cell<State>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing kept yet; the closer is not registered.
    Unregistered,
    /// Keeping, up to CAPACITY.
    Open,
    /// The thread is exiting (the closer ran), or the C library cannot
    /// rearm: keep nothing.
    Closed,
}

impl Cache {
    /// Destroys every kept coroutine.
    fn flush(&self) {
        while let Some(co) = self.pop() {
            // SAFETY: kept coroutines were made by ucoro_create, are
            // exited or never ran, and belong to the cache alone.
            unsafe { arch::destroy(co) };
        }
    }

    fn pop(&self) -> Option<*mut sys::coroutine> {
        let len = self.len.get();
        if len == 0 {
            return None;
        }
        self.len.set(len - 1);
        Some(self.entries[len - 1].get())
    }

    /// Keeps nothing from now on, and frees what it kept.
    fn close(&self) {
        self.state.set(State::Closed);
        self.limit.set(0);
        self.flush();
    }
}

/// Empties this thread's cache when the thread exits (its destructor is
/// registered with the first coroutine kept). The C library frees stacks
/// after its own thread-exit destructor too: they go straight back to the
/// slabs. A coroutine dropped after this ran (by a later thread-local
/// destructor) finds the cache closed and is destroyed at once.
struct Closer;

impl Drop for Closer {
    fn drop(&mut self) {
        cache().close();
    }
}

/// An empty entry (a named constant: an array repeat of a non-`Copy`
/// value needs one, `const { .. }` blocks being newer than the crate's
/// minimum Rust).
#[allow(clippy::declare_interior_mutable_const)]
const NO_ENTRY: Cell<*mut sys::coroutine> = Cell::new(std::ptr::null_mut());

thread_local! {
    static CACHE: Cache = const {
        Cache {
            entries: [NO_ENTRY; CAPACITY],
            len: Cell::new(0),
            limit: Cell::new(0),
            state: Cell::new(State::Unregistered),
        }
    };
    static CLOSER: Closer = const { Closer };
}

/// This thread's cache, without a closure around its use (which the
/// compiler may leave uninlined, with the accessor called through a
/// pointer).
#[inline(always)]
fn cache() -> &'static Cache {
    // SAFETY: CACHE has no destructor, so its storage is valid as long as
    // the thread runs, through its thread-local destructors too. The
    // reference is used only by the caller, on this thread (`Cache` is not
    // `Sync`, so it cannot cross to another), and never kept.
    CACHE.with(|cache| unsafe { &*(cache as *const Cache) })
}

/// A coroutine for the `Inner` block of `needed` bytes aligned to `align`,
/// on a stack asked as `requested`: a cached one rearmed to start `entry`
/// with that block as its argument (and, where the switch is inlined,
/// prepared for it). Returns it and the block (not yet written), or None:
/// none fits (the newest is tried first, then the others out of line).
///
/// # Safety
/// `entry` must accept the block, once written, as its argument.
#[inline(always)]
pub(crate) unsafe fn reuse(
    requested: usize,
    needed: usize,
    align: usize,
    entry: Entry,
) -> Option<(NonNull<sys::coroutine>, *mut c_void)> {
    let cache = cache();
    let len = cache.len.get();
    if len == 0 || len > CAPACITY {
        return None;
    }
    let co = cache.entries[len - 1].get();
    // SAFETY: a kept coroutine is live (not destroyed) and was made by
    // `create`, which wrote its tag.
    let tag = unsafe { *tag_of(co) };
    let index = if tag.requested == requested && tag.capacity >= needed {
        len - 1
    } else {
        find(cache, requested, needed)?
    };
    // SAFETY: as `rearm` requires: the entry leaves the cache there.
    unsafe { rearm(cache, index, align, entry) }
}

/// The index of a kept coroutine, not the newest, that fits.
#[cold]
#[inline(never)]
fn find(cache: &Cache, requested: usize, needed: usize) -> Option<usize> {
    (0..cache.len.get().saturating_sub(1)).rev().find(|&i| {
        // SAFETY: as in `reuse`.
        let tag = unsafe { *tag_of(cache.entries[i].get()) };
        tag.requested == requested && tag.capacity >= needed
    })
}

/// Takes the kept coroutine at `index` out of the cache and rearms it to
/// start `entry` with its block, aligned to `align`, as its argument.
///
/// # Safety
/// `index` is below the cache's length, and its entry fits the block.
#[inline(always)]
unsafe fn rearm(
    cache: &Cache,
    index: usize,
    align: usize,
    entry: Entry,
) -> Option<(NonNull<sys::coroutine>, *mut c_void)> {
    let len = cache.len.get();
    let co = cache.entries[index].get();
    cache.entries[index].set(cache.entries[len - 1].get());
    cache.len.set(len - 1);
    let area = area_of(co);
    let block = area.wrapping_add(area.align_offset(align));
    // SAFETY: co was made by ucoro_create, exited or never switched into,
    // and nothing else holds it (it left the cache). `block` lies within
    // the capacity bytes after the tag (`needed` counts the alignment
    // slack), which the caller writes before the first resume.
    if unsafe { ucoro__crate_recycle(co, Some(entry), block) } != 0 {
        // SAFETY: kept coroutines are non-null.
        return Some((unsafe { NonNull::new_unchecked(co) }, block));
    }
    cannot_rearm(cache, co);
    None
}

/// The C library cannot rearm a stack (a sanitizer build): destroys `co`
/// and everything kept, and keeps nothing from now on.
#[cold]
#[inline(never)]
fn cannot_rearm(cache: &Cache, co: *mut sys::coroutine) {
    // SAFETY: as in `Cache::flush`: ours alone, not running.
    unsafe { arch::destroy(co) };
    cache.close();
}

/// `ucoro_create` for `Coroutine::create`, with a block for an `Inner` of
/// `needed` bytes: returns the C coroutine and where that block starts
/// (16-byte aligned), or NULL with `errno` set. When the stack cannot be
/// allocated and this thread holds cached coroutines, they are destroyed
/// and it is tried again.
///
/// # Safety
/// As `ucoro_create`: `entry` must accept the block as its argument.
pub(crate) unsafe fn create(
    requested: usize,
    needed: usize,
    entry: Entry,
) -> (*mut sys::coroutine, *mut c_void) {
    let capacity = capacity_for(needed);
    let mut block: *mut c_void = std::ptr::null_mut();
    // SAFETY: plain calls; on success C hands us `extra_for(needed)`
    // writable bytes at `block`, valid until ucoro_destroy.
    let mut co =
        unsafe { sys::ucoro_create(requested, Some(entry), extra_for(needed), &mut block) };
    if co.is_null()
        && std::io::Error::last_os_error().raw_os_error() != Some(libc::E2BIG)
        && cache().len.get() > 0
    {
        cache().flush();
        // SAFETY: as above.
        co = unsafe { sys::ucoro_create(requested, Some(entry), extra_for(needed), &mut block) };
    }
    if co.is_null() {
        return (co, block);
    }
    debug_assert_eq!(block, co.cast::<u8>().wrapping_add(BLOCK_OFFSET).cast());
    // SAFETY: the block is ours, 16-byte aligned and at least TAG_SIZE
    // bytes; the tag is its first field.
    unsafe {
        tag_of(co).write(Tag {
            requested,
            capacity,
        })
    };
    (co, area_of(co))
}

/// Ends a coroutine made through [`create`] whose frames are gone (it
/// exited or never ran) and whose `Inner` block is dropped: kept for
/// [`reuse`] if this thread's cache has room, destroyed otherwise.
///
/// # Safety
/// `co` was made by `create`, is not destroyed, exited or was never
/// switched into, and nothing uses it afterwards.
#[inline]
pub(crate) unsafe fn retire(co: NonNull<sys::coroutine>) {
    let co = co.as_ptr();
    let cache = cache();
    let len = cache.len.get();
    if len < cache.limit.get() && len < CAPACITY {
        // SAFETY: as below.
        unsafe { keep(cache, len, co) };
    } else {
        // SAFETY: the caller's contract.
        unsafe { retire_slow(cache, co) };
    }
}

/// Puts `co` in the cache at `len`, its length.
///
/// # Safety
/// `len` is below CAPACITY; `co` as for `retire`.
#[inline]
unsafe fn keep(cache: &Cache, len: usize, co: *mut sys::coroutine) {
    // SAFETY: the struct is live and not running. One that never ran is
    // marked exited too: to the C API and to gdb's `ucoro list`, a cached
    // coroutine is an exited one.
    unsafe { (*co).exited = 1 };
    cache.entries[len].set(co);
    cache.len.set(len + 1);
}

/// `retire` when the cache is full, closed, or not opened yet (this
/// thread's first: the closer is registered now).
///
/// # Safety
/// As for `retire`.
#[cold]
#[inline(never)]
unsafe fn retire_slow(cache: &Cache, co: *mut sys::coroutine) {
    if cache.state.get() == State::Unregistered && CLOSER.try_with(|_| ()).is_ok() {
        cache.state.set(State::Open);
        cache.limit.set(CAPACITY);
        // SAFETY: the cache is empty (never opened); the caller's contract.
        unsafe { keep(cache, 0, co) };
        return;
    }
    // SAFETY: the caller's contract is destroy's.
    unsafe { arch::destroy(co) };
}
