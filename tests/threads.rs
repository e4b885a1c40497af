//! Threads under load (SPEC §2 "Threads" and "Nesting"): many threads running
//! nested coroutines at once, coroutines that suspend on one thread and
//! finish on another, and the regression test for QEMU's bug (a thread-local
//! address cached across a switch).
//!
//! How these tests are built:
//!
//! - Entries are `unsafe extern "C" fn`s: a panic inside one would abort the
//!   whole binary, so they never assert. They count what they check and what
//!   failed in atomics, and the test asserts on the counts from a thread's
//!   main context.
//! - Coroutine structs come from `malloc`, filled with 0xA5 before
//!   `coroutine_init`, as C callers hand them over.
//! - The thread identity inside a coroutine is taken with the `gettid`
//!   system call: nothing the compiler could cache across a switch (glibc
//!   declares `pthread_self` const, Rust's `thread::current` reads a
//!   thread-local).
//! - Run them in release too (`cargo test --release --test threads`): the C
//!   library is then compiled with optimisation, which is when a compiler
//!   could hoist a thread-local address out of a loop around a switch.
//!   `csrc/tests/tls_migration.c` does the same from C at -O2.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::cell::Cell;
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use ucoro::{sys, Builder, Coroutine, CoroutineResult, Yielder};

mod common;
use common::{
    arg, current, garbage_co, in_own_process, init_with, is_main, num, val, vm_size_kib, Co, Owned,
    SendPtr,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The kernel's id of the calling thread, by system call every time.
fn tid() -> libc::c_long {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Counts checks and failures, by kind, from any thread and any coroutine.
#[derive(Default)]
struct Tally {
    checks: AtomicUsize,
    /// `coroutine_self()` was not the coroutine expected.
    wrong_self: AtomicUsize,
    /// `coroutine_is_main` gave the wrong answer for some leader.
    wrong_main: AtomicUsize,
    /// A value passed across a switch was not the one expected.
    wrong_value: AtomicUsize,
    /// The thread the code ran on was not the one expected.
    wrong_thread: AtomicUsize,
    /// Exit, re-initialisation or release went wrong.
    wrong_lifecycle: AtomicUsize,
}

impl Tally {
    fn check(&self, ok: bool, kind: &AtomicUsize) {
        self.checks.fetch_add(1, Relaxed);
        if !ok {
            kind.fetch_add(1, Relaxed);
        }
    }

    /// `co` is running, and `leader` (the running thread's main coroutine)
    /// is main while `co` is not.
    fn running(&self, co: Co, leader: Co) {
        self.check(current() == co, &self.wrong_self);
        self.check(is_main(leader) && !is_main(co), &self.wrong_main);
    }

    /// (checks, [failures by kind]) so far.
    fn snapshot(&self) -> (usize, [usize; 5]) {
        (
            self.checks.load(SeqCst),
            [
                self.wrong_self.load(SeqCst),
                self.wrong_main.load(SeqCst),
                self.wrong_value.load(SeqCst),
                self.wrong_thread.load(SeqCst),
                self.wrong_lifecycle.load(SeqCst),
            ],
        )
    }

    /// Asserts that nothing failed and at least `min_checks` checks ran.
    fn assert_clean(&self, min_checks: usize) {
        let (checks, fails) = self.snapshot();
        assert_eq!(
            fails, [0; 5],
            "failures [self, main, value, thread, lifecycle] out of {checks} checks"
        );
        assert!(
            checks >= min_checks,
            "only {checks} checks ran, expected at least {min_checks}"
        );
    }
}

// ---------------------------------------------------------------------------
// 8 threads x 64 coroutines, nested 3 deep (raw C API)
// ---------------------------------------------------------------------------

const THREADS: usize = 8;
const CHAINS: usize = 64;
/// Rounds per chain: every round is six switches through three levels.
/// 8 x 64 x 2000 x 6 = 6,144,000 switches in all, about a second in a debug
/// build on two cores (release: 4x as many).
const ROUNDS: usize = if cfg!(debug_assertions) { 2000 } else { 8000 };
/// The grandchild returns (and its parent re-initialises and restarts it)
/// every this many rounds, so exit and re-init run under load too.
const LEAF_LIFE: usize = 7;
const DEPTH: usize = 3;
const CHAIN_STACK: usize = 64 << 10;

/// Sent down the chain to make every level return.
const STOP: usize = usize::MAX;
/// Yielded up by a level that has just started (and started its child).
const READY: usize = usize::MAX - 1;

/// What level `depth` of chain `id` yields up in round `round`: every value
/// distinct, in 30 bits (CHAINS <= 64, ROUNDS < 2^19), so 32-bit too.
fn up_value(id: usize, round: usize, depth: usize) -> usize {
    ((id + 1) << 23) | (round << 4) | (depth + 1)
}

/// What level `depth` of chain `id` returns when stopped: the top bit but
/// one set, which no up_value has.
fn done_value(id: usize, depth: usize) -> usize {
    (1 << (usize::BITS - 2)) | (id << 4) | depth
}

/// One chain: top -> child -> grandchild, all on one thread.
struct Chain {
    id: usize,
    /// The owning thread's main coroutine.
    leader: Co,
    levels: [Owned; DEPTH],
    tally: Arc<Tally>,
}

impl Chain {
    fn co(&self, depth: usize) -> Co {
        self.levels[depth].ptr()
    }

    /// Switches into level `depth` (from its parent) with `value`, checking
    /// the parent's self before and after.
    fn resume(&self, depth: usize, value: usize) -> usize {
        let parent = if depth == 0 {
            self.leader
        } else {
            self.co(depth - 1)
        };
        self.expect_running(parent);
        // SAFETY: level `depth` is initialised and suspended with no caller
        // (or unstarted); its entry only touches this Chain, which outlives it.
        let got = unsafe { sys::coroutine_yieldto(self.co(depth), val(value)) };
        self.expect_running(parent);
        num(got)
    }

    /// Suspends level `depth` (running), yielding `value` to its parent;
    /// returns what the parent resumes it with.
    fn suspend(&self, depth: usize, value: usize) -> usize {
        self.expect_running(self.co(depth));
        // SAFETY: level `depth` is running and was entered through yieldto,
        // so it has a caller to return to.
        let got = unsafe { sys::coroutine_yield(val(value)) };
        self.expect_running(self.co(depth));
        num(got)
    }

    fn expect_running(&self, co: Co) {
        if co == self.leader {
            self.tally
                .check(current() == co && is_main(co), &self.tally.wrong_self);
        } else {
            self.tally.running(co, self.leader);
        }
    }

    fn expect_value(&self, got: usize, want: usize) {
        self.tally.check(got == want, &self.tally.wrong_value);
    }

    fn expect_lifecycle(&self, ok: bool) {
        self.tally.check(ok, &self.tally.wrong_lifecycle);
    }
}

/// The body of level `D` of a chain; its first argument is the `Chain`.
///
/// # Safety
/// Entered through `coroutine_yieldto` with a pointer to a live `Chain` that
/// outlives the coroutine, whose level `D` is this coroutine.
unsafe extern "C" fn chain_level<const D: usize>(arg: *mut c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller (the parent passes its Chain).
    let chain = unsafe { &*arg.cast::<Chain>() };
    chain.expect_running(chain.co(D));
    if D + 1 < DEPTH {
        start_child(chain, D + 1);
    }
    let mut got = chain.suspend(D, READY);
    loop {
        if got == STOP {
            if D + 1 < DEPTH {
                let r = chain.resume(D + 1, STOP);
                chain.expect_value(r, done_value(chain.id, D + 1));
                chain.expect_lifecycle(chain.levels[D + 1].exited());
            }
            return val(done_value(chain.id, D));
        }
        let round = got;
        if D + 1 < DEPTH {
            let r = chain.resume(D + 1, round);
            chain.expect_value(r, up_value(chain.id, round, D + 1));
            if chain.levels[D + 1].exited() {
                // The grandchild finished its life: give it a new one.
                chain.expect_lifecycle(D + 2 == DEPTH && (round + 1) % LEAF_LIFE == 0);
                restart_child(chain, D + 1);
            }
        } else if (round + 1) % LEAF_LIFE == 0 {
            return val(up_value(chain.id, round, D));
        }
        got = chain.suspend(D, up_value(chain.id, round, D));
    }
}

/// Starts level `depth` (unstarted or just re-initialised): its entry gets
/// the Chain and yields READY once it has started its own child.
fn start_child(chain: &Chain, depth: usize) {
    let parent = chain.co(depth - 1);
    chain.expect_running(parent);
    // SAFETY: level `depth` is initialised and unstarted; its entry only
    // touches the Chain, which outlives it.
    let got = unsafe { sys::coroutine_yieldto(chain.co(depth), arg(chain)) };
    chain.expect_running(parent);
    chain.expect_value(num(got), READY);
}

/// Re-initialises the exited level `depth` and starts it again.
fn restart_child(chain: &Chain, depth: usize) {
    // SAFETY: level `depth` has exited (checked by the caller), so init may
    // reset it; its in-fields (entry, stack_size) are still set.
    let rc = unsafe { sys::coroutine_init(chain.co(depth)) };
    chain.expect_lifecycle(rc == 0);
    if rc == 0 {
        start_child(chain, depth);
    }
}

/// One thread of the stress test: CHAINS chains, resumed round-robin.
fn stress_thread(index: usize, tally: Arc<Tally>, barrier: Arc<Barrier>) -> usize {
    let leader = current();
    let chains: Vec<Box<Chain>> = (0..CHAINS)
        .map(|k| {
            Box::new(Chain {
                id: index * CHAINS + k,
                leader,
                levels: [
                    Owned::with_stack(chain_level::<0>, CHAIN_STACK),
                    Owned::with_stack(chain_level::<1>, CHAIN_STACK),
                    Owned::with_stack(chain_level::<2>, CHAIN_STACK),
                ],
                tally: tally.clone(),
            })
        })
        .collect();
    // Every thread has built its coroutines: now all run at once.
    barrier.wait();
    for chain in &chains {
        // SAFETY: the top level is initialised and unstarted; it only touches
        // the Chain (boxed, so it does not move), which outlives it.
        let got = unsafe { sys::coroutine_yieldto(chain.co(0), arg(&**chain)) };
        chain.expect_value(num(got), READY);
        chain.expect_running(leader);
    }
    let mut rounds = 0;
    for round in 0..ROUNDS {
        for chain in &chains {
            let got = chain.resume(0, round);
            chain.expect_value(got, up_value(chain.id, round, 0));
            rounds += 1;
        }
    }
    for chain in &chains {
        let got = chain.resume(0, STOP);
        chain.expect_value(got, done_value(chain.id, 0));
        chain.expect_lifecycle(chain.levels.iter().all(Owned::exited));
    }
    rounds
}

#[test]
fn stress_8_threads_64_coroutines_nested_3_deep() {
    let tally = Arc::new(Tally::default());
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let (tally, barrier) = (tally.clone(), barrier.clone());
            thread::spawn(move || stress_thread(index, tally, barrier))
        })
        .collect();
    let rounds: Vec<usize> = handles
        .into_iter()
        .map(|h| h.join().expect("stress thread panicked"))
        .collect();
    assert_eq!(rounds, [CHAINS * ROUNDS; THREADS], "rounds per thread");
    // Per round and chain: 3 resumes and 2 suspends with 2 self-checks each
    // (plus is_main checks) and 3 value checks.
    tally.assert_clean(THREADS * CHAINS * ROUNDS * 20);
}

// ---------------------------------------------------------------------------
// The same through the safe API
// ---------------------------------------------------------------------------

const SAFE_ROUNDS: usize = if cfg!(debug_assertions) { 300 } else { 1200 };
const SAFE_STACK: usize = 256 << 10;

/// What a level of the safe chains saw go wrong, and how many checks ran.
#[derive(Default)]
struct SafeTally {
    checks: Cell<usize>,
    fails: Cell<usize>,
}

impl SafeTally {
    fn check(&self, ok: bool) {
        self.checks.set(self.checks.get() + 1);
        if !ok {
            self.fails.set(self.fails.get() + 1);
        }
    }
}

/// Level `depth` of safe chain `id`: starts its child lazily, passes each
/// round down and the values up, checking `coroutine_self()` (the C struct
/// under the safe coroutine) around every switch.
fn safe_level(depth: usize, id: usize, tally: Rc<SafeTally>) -> Coroutine<usize, usize, usize> {
    Builder::new()
        .stack_size(SAFE_STACK)
        .build(move |y: &Yielder<usize, usize>, first: usize| {
            let me = current();
            tally.check(!is_main(me));
            let mut child = (depth + 1 < DEPTH).then(|| safe_level(depth + 1, id, tally.clone()));
            let mut round = first;
            loop {
                if let Some(child) = child.as_mut() {
                    tally.check(current() == me);
                    let got = child.resume(round);
                    tally.check(current() == me);
                    let want = if round == STOP {
                        CoroutineResult::Return(done_value(id, depth + 1))
                    } else {
                        CoroutineResult::Yield(up_value(id, round, depth + 1))
                    };
                    tally.check(matches!(got, Ok(ref r) if *r == want));
                }
                if round == STOP {
                    return done_value(id, depth);
                }
                tally.check(current() == me);
                round = y.suspend(up_value(id, round, depth));
                tally.check(current() == me && !is_main(me));
            }
        })
        .expect("a 256 KiB stack")
}

#[test]
fn safe_api_nested_3_deep_on_8_threads() {
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let tally = Rc::new(SafeTally::default());
                let leader = current();
                let mut tops: Vec<_> = (0..CHAINS)
                    .map(|k| {
                        (
                            index * CHAINS + k,
                            safe_level(0, index * CHAINS + k, tally.clone()),
                        )
                    })
                    .collect();
                barrier.wait();
                for round in (0..SAFE_ROUNDS).chain([STOP]) {
                    for (id, top) in &mut tops {
                        let got = top.resume(round);
                        let want = if round == STOP {
                            CoroutineResult::Return(done_value(*id, 0))
                        } else {
                            CoroutineResult::Yield(up_value(*id, round, 0))
                        };
                        tally.check(matches!(got, Ok(ref r) if *r == want));
                        tally.check(current() == leader && is_main(leader));
                    }
                }
                tally.check(tops.iter().all(|(_, top)| top.is_finished()));
                (tally.checks.get(), tally.fails.get())
            })
        })
        .collect();
    for (index, h) in handles.into_iter().enumerate() {
        let (checks, fails) = h.join().expect("safe stress thread panicked");
        assert_eq!(
            fails, 0,
            "thread {index}: {fails} of {checks} checks failed"
        );
        assert!(
            checks >= CHAINS * SAFE_ROUNDS * 10,
            "thread {index}: {checks} checks"
        );
    }
}

// ---------------------------------------------------------------------------
// Suspended on one thread, finished on another
// ---------------------------------------------------------------------------

/// The starting thread's view, passed as the first argument.
struct Trip {
    me: Co,
    tid: libc::c_long,
    leader: Co,
    tally: Arc<Tally>,
}

/// The resuming thread's view, passed when it resumes the coroutine.
struct Hop {
    tid: libc::c_long,
    leader: Co,
}

/// Checks where it runs on both sides of its one yield.
///
/// # Safety
/// Entered through `coroutine_yieldto` with a `Trip` that outlives the
/// coroutine, and resumed with a `Hop` that outlives that call.
unsafe extern "C" fn traveller(arg: *mut c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller.
    let trip = unsafe { &*arg.cast::<Trip>() };
    let t = &*trip.tally;
    t.check(tid() == trip.tid, &t.wrong_thread);
    t.running(trip.me, trip.leader);
    // SAFETY: entered through yieldto, so this coroutine has a caller.
    let hop = unsafe { sys::coroutine_yield(val(1)) };
    // SAFETY: the resumer passes a Hop that outlives its yieldto.
    let hop = unsafe { &*hop.cast::<Hop>() };
    t.check(tid() == hop.tid && hop.tid != trip.tid, &t.wrong_thread);
    t.running(trip.me, hop.leader);
    // The thread it started on is no longer the one it runs on.
    t.check(!is_main(trip.leader), &t.wrong_main);
    val(2)
}

/// Thread A: creates coroutines, runs each to its first yield and hands it
/// to thread B, which finishes, releases and frees it.
fn migrate(times: usize, tally: &Arc<Tally>) {
    // A few in flight at most, so that both threads keep busy.
    let (tx, rx) = mpsc::sync_channel::<SendPtr<Trip>>(4);
    let a_tally = tally.clone();
    let a = thread::spawn(move || {
        let leader = current();
        let t = &*a_tally;
        for _ in 0..times {
            let co = garbage_co();
            // SAFETY: co is a fresh malloc'd struct of the right size.
            let (rc, _) = unsafe { init_with(co, Some(traveller), 0) };
            t.check(rc == 0, &t.wrong_lifecycle);
            if rc != 0 {
                // SAFETY: co is ours and was never initialised.
                unsafe { libc::free(co.cast()) };
                continue;
            }
            let trip = Box::into_raw(Box::new(Trip {
                me: co,
                tid: tid(),
                leader,
                tally: a_tally.clone(),
            }));
            // SAFETY: co is initialised and unstarted; trip outlives it (B frees
            // it after the coroutine finished).
            let got = unsafe { sys::coroutine_yieldto(co, trip.cast()) };
            t.check(num(got) == 1, &t.wrong_value);
            t.check(current() == leader && is_main(leader), &t.wrong_self);
            tx.send(SendPtr(trip)).expect("thread B is gone");
        }
    });
    let b_tally = tally.clone();
    let b = thread::spawn(move || {
        let t = &*b_tally;
        let hop = Hop {
            tid: tid(),
            leader: current(),
        };
        for trip in rx {
            // SAFETY: A gave up the Trip (and its coroutine, suspended in its
            // first yield with no caller) by sending it; nothing else uses it.
            let trip = unsafe { Box::from_raw(trip.get()) };
            let co = trip.me;
            // SAFETY: as above; hop outlives the call.
            let got = unsafe { sys::coroutine_yieldto(co, arg(&hop)) };
            t.check(num(got) == 2, &t.wrong_value);
            t.check(
                current() == hop.leader && is_main(hop.leader),
                &t.wrong_self,
            );
            // SAFETY: co has exited (checked through its out field); release
            // has nothing left to free, then the struct is ours.
            unsafe {
                t.check((*co).exited == 1, &t.wrong_lifecycle);
                t.check(sys::coroutine_release(co) == 0, &t.wrong_lifecycle);
                libc::free(co.cast());
            }
        }
    });
    a.join().expect("thread A panicked");
    b.join().expect("thread B panicked");
}

#[test]
fn coroutine_suspended_on_one_thread_finishes_on_another_in_a_loop() {
    in_own_process(
        "coroutine_suspended_on_one_thread_finishes_on_another_in_a_loop",
        || {
            const TIMES: usize = 2000;
            let tally = Arc::new(Tally::default());
            // The first trips fill pools and map the first slab.
            migrate(100, &tally);
            let before = vm_size_kib();
            migrate(TIMES, &tally);
            let grown_kib = vm_size_kib().saturating_sub(before);
            // Each coroutine has a default (16 MiB) stack: keeping them would
            // grow the address space by ~32 GiB.
            assert!(
                grown_kib < 256 << 10,
                "address space grew by {grown_kib} KiB over {TIMES} migrations"
            );
            tally.assert_clean((TIMES + 100) * 12);
        },
    );
}

// ---------------------------------------------------------------------------
// No thread-local address cached across a switch (QEMU's bug)
// ---------------------------------------------------------------------------

/// Switches of the ping-pong coroutine between the two threads.
const PING_PONGS: usize = if cfg!(debug_assertions) {
    20_000
} else {
    100_000
};

/// The resuming thread, passed at every resume.
struct Resumer {
    tid: libc::c_long,
    leader: Co,
    /// The other thread's main coroutine: never main here.
    other_leader: Co,
    tally: Arc<Tally>,
}

impl Resumer {
    /// The checks a coroutine `me` makes about where it runs now.
    fn check_here(&self, me: Co) {
        let t = &*self.tally;
        t.check(tid() == self.tid, &t.wrong_thread);
        t.running(me, self.leader);
        t.check(!is_main(self.other_leader), &t.wrong_main);
    }
}

/// Calls coroutine_self() and coroutine_is_main() before and after every
/// yield in a tight loop, while two threads take turns resuming it: if the
/// library kept a thread-local address across the switch, the calls after
/// it would answer for the thread it suspended on.
///
/// # Safety
/// Entered and resumed through `coroutine_yieldto`, every time with a
/// `Resumer` that outlives that call.
unsafe extern "C" fn ping_pong(arg: *mut c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller.
    let mut here = unsafe { &*arg.cast::<Resumer>() };
    let me = current();
    for i in 0..PING_PONGS {
        here.check_here(me);
        // SAFETY: entered through yieldto, so this coroutine has a caller.
        let next = unsafe { sys::coroutine_yield(val(i)) };
        // SAFETY: every resumer passes a Resumer that outlives its yieldto.
        here = unsafe { &*next.cast::<Resumer>() };
        here.check_here(me);
    }
    val(STOP)
}

enum Baton {
    /// Resume the coroutine; it must yield `expect` (or finish).
    Turn(SendPtr<sys::coroutine>, usize),
    Finished,
}

/// One of the two threads taking turns: resumes the coroutine whenever the
/// baton arrives and passes it on.
fn take_turns(
    first: bool,
    leaders: Arc<(Barrier, std::sync::Mutex<[usize; 2]>)>,
    rx: mpsc::Receiver<Baton>,
    tx: mpsc::Sender<Baton>,
    tally: Arc<Tally>,
) {
    let me_index = usize::from(!first);
    let leader = current();
    leaders.1.lock().unwrap()[me_index] = leader as usize;
    leaders.0.wait();
    let other_leader = leaders.1.lock().unwrap()[1 - me_index] as Co;
    let resumer = Resumer {
        tid: tid(),
        leader,
        other_leader,
        tally: tally.clone(),
    };
    let t = &*tally;
    let mut owned = None;
    if first {
        let co = Owned::with_stack(ping_pong, 0);
        // SAFETY: co is initialised and unstarted; ping_pong only touches the
        // Resumers passed in, each alive during its yieldto.
        let got = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&resumer)) };
        t.check(num(got) == 0, &t.wrong_value);
        tx.send(Baton::Turn(SendPtr(co.ptr()), 1)).unwrap();
        owned = Some(co);
    }
    for baton in rx {
        match baton {
            Baton::Turn(co, expect) => {
                // SAFETY: the coroutine is suspended with no caller; the other
                // thread gave it up by sending the baton and waits for it back.
                let got = unsafe { sys::coroutine_yieldto(co.get(), arg(&resumer)) };
                t.check(current() == leader && is_main(leader), &t.wrong_self);
                if num(got) == STOP {
                    t.check(expect == PING_PONGS, &t.wrong_value);
                    // SAFETY: the coroutine has finished; reading its out field.
                    t.check(unsafe { (*co.get()).exited } == 1, &t.wrong_lifecycle);
                    let _ = tx.send(Baton::Finished);
                    break;
                }
                t.check(num(got) == expect, &t.wrong_value);
                if tx.send(Baton::Turn(co, expect + 1)).is_err() {
                    break;
                }
            }
            Baton::Finished => break,
        }
    }
    // The first thread owns the struct; the coroutine has finished by now
    // (or the test fails on the tally).
    drop(owned);
}

#[test]
fn thread_local_state_not_cached_across_a_switch() {
    let tally = Arc::new(Tally::default());
    let leaders = Arc::new((Barrier::new(2), std::sync::Mutex::new([0usize; 2])));
    let (to_b, b_rx) = mpsc::channel();
    let (to_a, a_rx) = mpsc::channel();
    let a = {
        let (leaders, tally) = (leaders.clone(), tally.clone());
        thread::spawn(move || take_turns(true, leaders, a_rx, to_b, tally))
    };
    let b = {
        let (leaders, tally) = (leaders.clone(), tally.clone());
        thread::spawn(move || take_turns(false, leaders, b_rx, to_a, tally))
    };
    a.join().expect("thread A panicked");
    b.join().expect("thread B panicked");
    // Per switch: 2 x (thread, self, main, other main) in the coroutine.
    tally.assert_clean(PING_PONGS * 8);
}
