//! Stacks within the system's limits: address-space and data limits,
//! bounded size classes, memory given back after a burst and by threads
//! that drop coroutines as they exit, and recovery after a size that
//! cannot be had.
//!
//! How these tests are built:
//!
//! - Each runs in a process of its own ([`in_own_process`]): they set
//!   resource limits or measure the whole process (VmSize, VmRSS, VmPTE,
//!   VmData in /proc/self/status), which no other test may disturb.
//! - "One mmap per stack" is the yardstick the originals set (spice-gtk and
//!   gtk-vnc map each stack on its own): where a test says ucoro must
//!   succeed, it first shows that plain mmaps of the same stacks (each with
//!   the 64 KiB guard ucoro adds) succeed there too.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::c_void;
use std::io;
use std::ptr;

use ucoro::{sys, Builder, CoroutineResult, Generator, Yielder};

mod common;
use common::{in_own_process, proc_status_bytes, DEFAULT_STACK, MIN_STACK};

/// The guard region below every stack (csrc/stack.c `GUARD_SIZE`).
const GUARD: usize = 64 << 10;
const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Yields its argument, then returns the argument plus what it was resumed
/// with.
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library, entered with
/// coroutine_yieldto.
unsafe extern "C" fn yield_then_add(arg: *mut c_void) -> *mut c_void {
    // SAFETY: entered through coroutine_yieldto, so there is a caller.
    let more = unsafe { sys::coroutine_yield(arg) };
    (arg as usize + more as usize) as *mut c_void
}

/// A C coroutine in a box (it never moves), initialised with `stack_size`;
/// or init's errno.
fn c_coroutine(stack_size: usize) -> Result<Box<sys::coroutine>, io::Error> {
    // SAFETY: struct coroutine is plain C data for which all-zero is valid.
    let mut co: Box<sys::coroutine> = Box::new(unsafe { std::mem::zeroed() });
    co.stack_size = stack_size;
    co.entry = Some(yield_then_add);
    // SAFETY: a valid struct with its in-fields set, at its final address.
    if unsafe { sys::coroutine_init(&mut *co) } == 0 {
        Ok(co)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs a coroutine from [`c_coroutine`] to its first suspend with `i`.
fn start(co: &mut sys::coroutine, i: usize) {
    // SAFETY: initialised and unstarted.
    let got = unsafe { sys::coroutine_yieldto(co, i as *mut c_void) };
    assert_eq!(got as usize, i, "coroutine {i} yields its input");
    assert_eq!(co.exited, 0);
}

/// Resumes a suspended coroutine from [`c_coroutine`] to its end; returns
/// its result (its input plus 1).
fn finish(co: &mut sys::coroutine) -> usize {
    // SAFETY: initialised and suspended in coroutine_yield.
    let r = unsafe { sys::coroutine_yieldto(co, 1 as *mut c_void) } as usize;
    assert_eq!(co.exited, 1, "finished");
    // SAFETY: exited: release is a no-op, and the box outlives it.
    assert_eq!(unsafe { sys::coroutine_release(co) }, 0);
    r
}

/// Maps one stack the way the originals do (one mapping), with ucoro's
/// guard added; None if the system refuses.
fn mmap_stack(size: usize) -> Option<(*mut c_void, usize)> {
    let len = size + GUARD;
    // SAFETY: a fresh private anonymous mapping; nothing existing is touched.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some((p, len))
}

fn munmap(mapping: (*mut c_void, usize)) {
    // SAFETY: a mapping from mmap_stack, unmapped once.
    assert_eq!(unsafe { libc::munmap(mapping.0, mapping.1) }, 0);
}

/// Whether stacks of all these sizes, one mmap each, fit at once.
fn one_mmap_per_stack_fits(sizes: &[usize]) -> bool {
    let maps: Vec<_> = sizes.iter().map_while(|&s| mmap_stack(s)).collect();
    let all = maps.len() == sizes.len();
    maps.into_iter().for_each(munmap);
    all
}

/// Sets the soft limit of `resource` to `bytes` (the hard limit stays).
fn set_limit(resource: libc::__rlimit_resource_t, bytes: usize) {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(resource, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        assert_eq!(
            libc::setrlimit(resource, &new),
            0,
            "setrlimit: {}",
            io::Error::last_os_error()
        );
    }
}

/// Builds a coroutine with a `size`-byte stack (the `i`th of a series) with
/// the safe API and runs it to its end at once.
fn run_short_lived(size: usize, i: usize) {
    let mut co = Builder::new()
        .stack_size(size)
        .build(|_: &Yielder<usize, ()>, x: usize| x + 1)
        .unwrap_or_else(|e| panic!("coroutine {i} ({size}-byte stack): {e}"));
    assert_eq!(
        co.resume(i).expect("resume"),
        CoroutineResult::Return(i + 1)
    );
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

// ---------------------------------------------------------------------------
// 1. Address-space and data limits: ucoro fits wherever one mmap per stack does
// ---------------------------------------------------------------------------

/// What a limit leaves beyond the 16 stacks: the library's own bookkeeping
/// (a group of slab records, 200 KiB) and whatever the process maps
/// meanwhile; far less than one more 16 MiB stack.
const LIMIT_MARGIN: usize = 2 * MIB;

/// Under a limit on `resource` (measured by the /proc/self/status field
/// `field`) set where 8 default-size and 8 1 MiB stacks fit, one mmap each,
/// but not one more default-size stack: 8 default-stack and 8 1 MiB
/// coroutines are held suspended at once, then run to their end.
fn sixteen_coroutines_under(resource: libc::__rlimit_resource_t, field: &str) {
    // Default and 1 MiB stacks taken in turn, so that each class's slabs
    // must make room for the other's.
    let sizes: Vec<usize> = (0..16)
        .map(|i| if i % 2 == 0 { DEFAULT_STACK } else { MIB })
        .collect();
    let mut cos = Vec::with_capacity(sizes.len());
    let budget: usize = sizes.iter().map(|s| s + GUARD).sum::<usize>() + LIMIT_MARGIN;
    let limit = proc_status_bytes(field) + budget;
    set_limit(resource, limit);
    assert!(
        one_mmap_per_stack_fits(&sizes),
        "{field} limit {:.1} MiB: the 16 stacks must fit one mmap each",
        mib(limit)
    );
    let mut more = sizes.clone();
    more.push(DEFAULT_STACK);
    assert!(
        !one_mmap_per_stack_fits(&more),
        "{field} limit {:.1} MiB: a 17th default-size stack must not fit",
        mib(limit)
    );

    for (i, &size) in sizes.iter().enumerate() {
        match c_coroutine(size) {
            Ok(co) => cos.push(co),
            Err(e) => panic!(
                "coroutine {i} ({} MiB stack) under a {field} limit where one mmap \
                 per stack fits: coroutine_init failed: {e}",
                size / MIB
            ),
        }
        assert_eq!(cos[i].stack_size, size, "coroutine {i}: stack size");
    }
    for (i, co) in cos.iter_mut().enumerate() {
        start(co, i);
    }
    for (i, co) in cos.iter_mut().enumerate() {
        assert_eq!(finish(co), i + 1, "coroutine {i}: its own result");
    }
}

#[test]
fn sixteen_coroutines_fit_under_an_address_space_limit_where_sixteen_mmaps_fit() {
    in_own_process(
        "sixteen_coroutines_fit_under_an_address_space_limit_where_sixteen_mmaps_fit",
        || sixteen_coroutines_under(libc::RLIMIT_AS, "VmSize"),
    );
}

/// RLIMIT_DATA counts private writable mappings whether MAP_NORESERVE or
/// not: what strict overcommit (vm.overcommit_memory=2) charges. So this is
/// the commit-charge bound: no more than one mmap per stack plus a margin.
#[test]
fn sixteen_coroutines_fit_under_a_data_limit_where_sixteen_mmaps_fit() {
    in_own_process(
        "sixteen_coroutines_fit_under_a_data_limit_where_sixteen_mmaps_fit",
        || sixteen_coroutines_under(libc::RLIMIT_DATA, "VmData"),
    );
}

// ---------------------------------------------------------------------------
// 2. Size classes: any number of distinct sizes makes a bounded number of slabs
// ---------------------------------------------------------------------------

#[test]
fn stack_sizes_round_up_to_a_few_classes_per_power_of_two() {
    let size_for = |n: usize| {
        // SAFETY: a pure function of its argument.
        unsafe { sys::ucoro_stack_size_for(n) }
    };
    let page = common::page_size();
    let mut classes = std::collections::BTreeSet::new();
    let mut last = 0;
    // Every page multiple up to 64 MiB, then every power of two and its
    // neighbours up to 2^60.
    let mut requests: Vec<usize> = (1..=(64 * MIB / page)).map(|p| p * page).collect();
    requests.extend((26..=60).flat_map(|k| [(1 << k) - 1, 1 << k, (1 << k) + 1]));
    for &n in &requests {
        let got = size_for(n);
        assert!(got >= n.max(MIN_STACK), "{n} got {got}");
        assert_eq!(got % page, 0, "{n} got {got}: whole pages");
        assert!(
            got <= (n + n / 4).next_multiple_of(page).max(MIN_STACK),
            "{n} got {got}: at most a quarter more"
        );
        assert!(got >= last, "monotonic: {n} got {got} after {last}");
        assert_eq!(size_for(got), got, "a class is its own class");
        last = got;
        classes.insert(got);
    }
    // 16 KiB .. 64 MiB is 12 powers of two: 4 classes each, and 64 MiB.
    let small = classes.iter().filter(|&&c| c <= 64 * MIB).count();
    assert!(small <= 12 * 4 + 1, "{small} classes up to 64 MiB");
    if page == 4096 {
        // 25 pages, in the class of 1.75 x 64 KiB (docs/bad-input.md).
        assert_eq!(size_for(100_001), 112 << 10);
    }
    assert_eq!(size_for(0), DEFAULT_STACK, "the default is a class");
    assert_eq!(size_for(MIB), MIB, "powers of two are classes");
}

#[test]
fn distinct_sizes_65536_exhaust_nothing() {
    in_own_process("distinct_sizes_65536_exhaust_nothing", || {
        const SIZES: usize = 65_536;
        let vm0 = proc_status_bytes("VmSize");
        let pte0 = proc_status_bytes("VmPTE");
        for i in 0..SIZES {
            // 16 KiB up to 256 MiB, one page apart: each its own size.
            run_short_lived(MIN_STACK + i * 4096, i);
        }
        let vm = proc_status_bytes("VmSize").saturating_sub(vm0);
        let pte = proc_status_bytes("VmPTE").saturating_sub(pte0);
        println!(
            "stack_limits: after {SIZES} distinct sizes: VmSize +{:.0} MiB, VmPTE +{:.1} MiB",
            mib(vm),
            mib(pte)
        );
        // What stays: the stacks thread pools and the empty-slab watermark
        // keep, and their slabs (a slab of stacks near 256 MiB is 1 GiB).
        assert!(vm < 16 * GIB, "address space grew by {:.0} MiB", mib(vm));
        assert!(pte < 4 * MIB, "page tables grew by {:.1} MiB", mib(pte));
        // A size never asked for yet, and the default, still work.
        let mut co = Builder::new()
            .stack_size(300 * MIB)
            .build(|_: &Yielder<u32, ()>, x: u32| x * 2)
            .expect("a new size after 65536 others");
        assert_eq!(co.resume(21).expect("resume"), CoroutineResult::Return(42));
        assert_eq!(Generator::new(|y| y.suspend(7u8)).next(), Some(7));
    });
}

// ---------------------------------------------------------------------------
// 3. A burst, then quiet: resident memory and page tables go back
// ---------------------------------------------------------------------------

#[test]
fn burst_of_200000_then_drop_gives_back_memory_and_page_tables() {
    in_own_process(
        "burst_of_200000_then_drop_gives_back_memory_and_page_tables",
        || {
            const BURST: usize = 200_000;
            // Whatever the first coroutine of a process sets up (the slab
            // records, the alternate signal stack) is not the burst's.
            let mut first = ucoro::Coroutine::new(|y: &Yielder<(), ()>, ()| y.suspend(()));
            first.resume(()).expect("first coroutine");
            drop(first);
            let (rss0, pte0) = (proc_status_bytes("VmRSS"), proc_status_bytes("VmPTE"));

            let mut cos: Vec<_> = (0..BURST)
                .map(|_| ucoro::Coroutine::new(|y: &Yielder<(), ()>, ()| y.suspend(())))
                .collect();
            for co in &mut cos {
                co.resume(()).expect("run to the first suspend");
            }
            let (rss1, pte1) = (proc_status_bytes("VmRSS"), proc_status_bytes("VmPTE"));
            drop(cos);
            let (rss2, pte2) = (proc_status_bytes("VmRSS"), proc_status_bytes("VmPTE"));
            println!(
                "stack_limits: {BURST} suspended: VmRSS +{:.0} MiB, VmPTE +{:.0} MiB; \
                 dropped: VmRSS {:+.1} MiB, VmPTE {:+.1} MiB",
                mib(rss1.saturating_sub(rss0)),
                mib(pte1.saturating_sub(pte0)),
                (rss2 as f64 - rss0 as f64) / MIB as f64,
                (pte2 as f64 - pte0 as f64) / MIB as f64,
            );
            assert!(
                pte1 - pte0 > 100 * MIB,
                "the burst must cost page tables to give back"
            );
            assert!(
                rss2.saturating_sub(rss0) < 4 * MIB,
                "VmRSS after the drop: {:.1} MiB above before",
                mib(rss2.saturating_sub(rss0))
            );
            assert!(
                pte2.saturating_sub(pte0) < 4 * MIB,
                "VmPTE after the drop: {:.1} MiB above before",
                mib(pte2.saturating_sub(pte0))
            );
        },
    );
}

// ---------------------------------------------------------------------------
// 4. A size that cannot be had leaves later creations working
// ---------------------------------------------------------------------------

#[test]
fn failed_size_leaves_later_creations_working() {
    in_own_process("failed_size_leaves_later_creations_working", || {
        const TIB: usize = 1 << 40;
        // Short-lived coroutines with huge distinct sizes, one after the
        // other: each fits on its own (as one mmap shows), so each must be
        // had, whatever the ones before took.
        for i in 0..64 {
            let size = 2 * TIB + i * MIB;
            let probe = mmap_stack(size).unwrap_or_else(|| {
                panic!("huge size {i}: one mmap of {size} bytes must fit once the earlier coroutines are gone")
            });
            munmap(probe);
            run_short_lived(size, i);
        }
        // A size no address space holds fails, with ENOMEM...
        let mut huge = c_coroutine(1 << 60);
        assert_eq!(
            huge.as_ref().map(|_| ()).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ENOMEM)),
            "a 2^60-byte stack"
        );
        // ... and what comes after works: the default size, a new size, the
        // safe API's panicking constructor.
        for size in [0, 3 * MIB, DEFAULT_STACK] {
            let mut co =
                c_coroutine(size).unwrap_or_else(|e| panic!("size {size} after a failure: {e}"));
            start(&mut co, 5);
            assert_eq!(finish(&mut co), 6);
        }
        assert_eq!(Generator::new(|y| y.suspend(7u8)).next(), Some(7));
        huge = c_coroutine(1 << 60);
        assert!(huge.is_err(), "the impossible size still fails");
    });
}

// ---------------------------------------------------------------------------
// 5. Coroutines dropped as threads exit give their stacks back
// ---------------------------------------------------------------------------

thread_local! {
    /// A suspended coroutine that the thread leaves to its `thread_local`
    /// destructors: dropping it there resumes it to unwind its frames, so
    /// a coroutine runs and a stack is freed while the thread exits.
    static LEFT_AT_EXIT: std::cell::RefCell<Option<ucoro::Coroutine<(), (), ()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts `count` threads, one after the other: each runs a coroutine that
/// touches 128 KiB of its stack and suspends, and leaves it to its
/// `thread_local` destructor.
fn threads_leaving_coroutines_at_exit(count: usize) {
    for _ in 0..count {
        std::thread::spawn(|| {
            let mut co = ucoro::Coroutine::new(|y: &Yielder<(), ()>, ()| {
                let frame = std::hint::black_box([0x5Au8; 128 << 10]);
                y.suspend(());
                std::hint::black_box(&frame);
            });
            co.resume(()).expect("run to the suspend");
            LEFT_AT_EXIT.with(|left| *left.borrow_mut() = Some(co));
        })
        .join()
        .expect("the thread");
    }
}

#[test]
fn coroutines_dropped_by_thread_local_destructors_give_their_stacks_back() {
    in_own_process(
        "coroutines_dropped_by_thread_local_destructors_give_their_stacks_back",
        || {
            const THREADS: usize = 1000;
            // The warm-up fills what caches keep: empty slabs, glibc's
            // cache of thread stacks, malloc arenas.
            threads_leaving_coroutines_at_exit(50);
            let (vm0, rss0) = (proc_status_bytes("VmSize"), proc_status_bytes("VmRSS"));
            threads_leaving_coroutines_at_exit(THREADS);
            let (vm1, rss1) = (proc_status_bytes("VmSize"), proc_status_bytes("VmRSS"));
            println!(
                "stack_limits: {THREADS} threads dropping a coroutine at exit: \
                 VmSize {:+.1} MiB, VmRSS {:+.1} MiB",
                (vm1 as f64 - vm0 as f64) / MIB as f64,
                (rss1 as f64 - rss0 as f64) / MIB as f64,
            );
            // A stack left behind per thread: 16 GiB and 128 MiB.
            assert!(vm1.saturating_sub(vm0) < 32 * MIB, "VmSize grew");
            assert!(rss1.saturating_sub(rss0) < 16 * MIB, "VmRSS grew");
        },
    );
}
