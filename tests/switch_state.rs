//! What the C library sees of a coroutine of the safe API, whichever switch
//! the build uses (the inlined one of src/arch/ on x86_64 and aarch64, the
//! C entry points elsewhere): the running coroutine (`coroutine_self()`),
//! `caller`, the saved context `ctx`, the resumer link `return_to` and the
//! frame-pointer link, as the C switch leaves them. gdb's `ucoro list`,
//! backtraces through the start stub's CFI, frame-pointer walkers and C
//! code running inside a Rust coroutine all read these.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod common;

use std::ffi::c_void;
use std::ptr::{self, addr_of_mut};

use common::{current, is_main, Co};
use ucoro::{sys, Coroutine, CoroutineResult, Generator};

/// The C view of one coroutine, read while it runs or is suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    caller: Co,
    ctx: *mut c_void,
    return_to: *mut sys::continuation,
}

fn seen(co: Co) -> Seen {
    // SAFETY: co is a live coroutine (every caller passes one whose stack
    // is in use), and these fields are plain data.
    unsafe {
        Seen {
            caller: (*co).caller,
            ctx: (*co).cc.ctx,
            return_to: (*co).cc.return_to,
        }
    }
}

fn cc_of(co: Co) -> *mut sys::continuation {
    // SAFETY: only an address is computed.
    unsafe { addr_of_mut!((*co).cc) }
}

/// Where the switch into a coroutine puts the resumer's frame record,
/// relative to the resumer's saved context (csrc/arch/interface.h), on
/// the architectures whose switch keeps a frame-pointer link.
#[cfg(target_arch = "x86_64")]
const FRAME_RECORD_IN_CONTEXT: Option<usize> = Some(40);
#[cfg(target_arch = "aarch64")]
const FRAME_RECORD_IN_CONTEXT: Option<usize> = Some(144);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const FRAME_RECORD_IN_CONTEXT: Option<usize> = None;

/// Where the resumer's frame record is, if this build's switch links
/// frame-pointer chains: the assembly switches of the two architectures
/// above, not the `_setjmp` or `swapcontext` modes (`UCORO_SWITCH`).
fn frame_record_in_context() -> Option<usize> {
    FRAME_RECORD_IN_CONTEXT.filter(|_| common::switch_is_assembly())
}

#[test]
fn a_running_rust_coroutine_is_coroutine_self_with_its_resumer_as_caller() {
    let main = current();
    assert!(is_main(main));
    let mut co: Coroutine<(), usize, ()> = Coroutine::new(move |y, ()| {
        for _ in 0..3 {
            let me = current();
            assert!(!is_main(me));
            let state = seen(me);
            // Running: its context is consumed, its caller and resumer
            // link name main, whose context is saved.
            assert_eq!(state.caller, main);
            assert!(state.ctx.is_null());
            assert_eq!(state.return_to, cc_of(main));
            assert!(!seen(main).ctx.is_null());
            if let Some(offset) = frame_record_in_context() {
                // SAFETY: fp_link is set at the first switch in and points
                // into this stack's fake context.
                let link = unsafe { *(*me).cc.fp_link };
                assert_eq!(link as usize, seen(main).ctx as usize + offset);
            }
            y.suspend(me as usize);
        }
    });
    for round in 0..3 {
        let Ok(CoroutineResult::Yield(me)) = co.resume(()) else {
            panic!("round {round}: the coroutine did not suspend");
        };
        let me = me as Co;
        // Suspended: back on main, nothing waits for it.
        assert_eq!(current(), main, "round {round}");
        let state = seen(me);
        assert!(state.caller.is_null());
        assert!(!state.ctx.is_null());
        assert!(state.return_to.is_null());
        assert!(seen(main).ctx.is_null());
    }
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(()));
    assert_eq!(current(), main);
}

#[test]
fn nested_rust_coroutines_name_each_other_as_caller() {
    let mut outer: Coroutine<(), (usize, usize), ()> = Coroutine::new(|y, ()| {
        let outer_co = current();
        let mut inner: Coroutine<(), usize, ()> = Coroutine::new(move |y, ()| {
            let me = current();
            assert_eq!(seen(me).caller, outer_co);
            assert_eq!(seen(me).return_to, cc_of(outer_co));
            // The outer one waits in its resume: switched out, and still
            // the caller of whoever resumed it.
            assert!(!seen(outer_co).ctx.is_null());
            assert!(is_main(seen(outer_co).caller));
            y.suspend(me as usize);
        });
        let Ok(CoroutineResult::Yield(inner_co)) = inner.resume(()) else {
            panic!("the inner coroutine did not suspend");
        };
        assert_eq!(current(), outer_co);
        assert!(seen(inner_co as Co).caller.is_null());
        y.suspend((outer_co as usize, inner_co));
        inner.resume(()).unwrap();
    });
    let Ok(CoroutineResult::Yield((outer_co, inner_co))) = outer.resume(()) else {
        panic!("the outer coroutine did not suspend");
    };
    assert_ne!(outer_co, inner_co);
    assert!(seen(outer_co as Co).caller.is_null());
    outer.resume(()).unwrap();
}

/// A C coroutine's entry: yields its argument plus one, then returns it
/// plus two.
unsafe extern "C" fn c_counter(arg: *mut c_void) -> *mut c_void {
    let n = arg as usize;
    // SAFETY: runs as a coroutine, resumed by coroutine_yieldto.
    unsafe { sys::coroutine_yield((n + 1) as *mut c_void) };
    (n + 2) as *mut c_void
}

#[test]
fn c_coroutines_run_inside_a_rust_coroutine_and_return_to_it() {
    let mut gen = Generator::new(|y| {
        let me = current();
        // SAFETY: an all-zero struct coroutine is valid input to init,
        // with entry set; it lives in this frame until released below.
        let mut c: sys::coroutine = unsafe { std::mem::zeroed() };
        c.entry = Some(c_counter);
        c.stack_size = 64 << 10;
        // SAFETY: c is set up as coroutine_init wants.
        assert_eq!(unsafe { sys::coroutine_init(&mut c) }, 0);
        // SAFETY: c is initialised and not running.
        let first = unsafe { sys::coroutine_yieldto(&mut c, 10 as *mut c_void) } as usize;
        // The C coroutine came back here, to the Rust coroutine that
        // resumed it, which is running again.
        assert_eq!(current(), me);
        y.suspend(first);
        assert_eq!(current(), me);
        // SAFETY: c is suspended in coroutine_yield.
        let last = unsafe { sys::coroutine_yieldto(&mut c, ptr::null_mut()) } as usize;
        assert_eq!(current(), me);
        // SAFETY: c has exited.
        assert_eq!(unsafe { sys::coroutine_release(&mut c) }, 0);
        y.suspend(last);
    });
    assert_eq!(gen.next(), Some(11));
    assert_eq!(gen.next(), Some(12));
    assert_eq!(gen.next(), None);
}

#[test]
fn a_rust_coroutine_on_a_thread_new_to_the_library_has_that_threads_main_as_caller() {
    // Each thread's state is its own: a coroutine made and run on a thread
    // that never used the library before sees that thread's main coroutine
    // as its caller.
    let main_here = current() as usize;
    let there = std::thread::spawn(move || {
        let mut co: Coroutine<(), usize, ()> = Coroutine::new(|y, ()| {
            y.suspend(seen(current()).caller as usize);
        });
        let Ok(CoroutineResult::Yield(caller)) = co.resume(()) else {
            panic!("the coroutine did not suspend");
        };
        assert_eq!(caller, current() as usize);
        caller
    })
    .join()
    .unwrap();
    assert_ne!(there, main_here);
}

/// The C view of a coroutine that has run to its end, read while its
/// `Coroutine` (and so its struct) is still alive.
fn assert_exited(co: Co, at: &str) {
    // SAFETY: co's struct lives until its Coroutine is dropped, after this.
    let (exited, cc_exited) = unsafe { ((*co).exited, (*co).cc.exited) };
    assert_ne!(exited, 0, "{at}: exited");
    assert_ne!(cc_exited, 0, "{at}: its continuation exited");
    assert!(seen(co).caller.is_null(), "{at}: no caller once it ended");
}

#[test]
fn an_exit_hands_the_thread_back_to_the_resumer_as_the_c_exit_does() {
    // Into main: main runs again, its context consumed.
    let main = current();
    let mut co: Coroutine<(), (), usize> = Coroutine::new(|_, ()| current() as usize);
    let Ok(CoroutineResult::Return(me)) = co.resume(()) else {
        panic!("the coroutine did not return");
    };
    assert_eq!(current(), main);
    assert!(seen(main).ctx.is_null());
    assert_exited(me as Co, "into main");
    // Into a coroutine: the outer one runs again, its context consumed,
    // still the callee of main.
    let mut outer: Coroutine<(), (), ()> = Coroutine::new(|_, ()| {
        let outer_co = current();
        let mut inner: Coroutine<(), (), usize> = Coroutine::new(|_, ()| current() as usize);
        let Ok(CoroutineResult::Return(inner_co)) = inner.resume(()) else {
            panic!("the inner coroutine did not return");
        };
        assert_eq!(current(), outer_co);
        let state = seen(outer_co);
        assert!(state.ctx.is_null());
        assert!(is_main(state.caller));
        assert_exited(inner_co as Co, "into a coroutine");
        // A coroutine made afterwards on this thread (on the recycled
        // stack, where the cache keeps it) starts and exits the same way.
        let mut again: Coroutine<(), (), usize> = Coroutine::new(|_, ()| current() as usize);
        let Ok(CoroutineResult::Return(again_co)) = again.resume(()) else {
            panic!("the second inner coroutine did not return");
        };
        assert_eq!(current(), outer_co);
        assert_exited(again_co as Co, "a second one");
    });
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Return(()));
    assert_eq!(current(), main);
}
