//! Backtraces taken inside a coroutine go on past its first frame into
//! whoever resumed it (the start stub's unwind information,
//! csrc/arch/interface.h): `std::backtrace::Backtrace` captured in a nested
//! coroutine names both resumers, and the backtrace a panic inside a
//! coroutine prints names the `resume` site.
//!
//! The functions the tests look for are `#[inline(never)]`, so that each is
//! a frame of its own; names come from the test binary's debug information
//! (the test profile has it). The assembly switches link backtraces; in the
//! portable modes (`UCORO_SWITCH=setjmp|ucontext`) a backtrace ends at the
//! coroutine's first frame, and the tests check that instead. The panic
//! test runs in a child process (`common::child`), whose stderr holds the
//! backtrace the default panic hook prints.

mod common;

use std::backtrace::Backtrace;
use std::hint::black_box;

use ucoro::{Coroutine, CoroutineResult};

/// Whether this build links backtraces through the start stub: its switch
/// is one of the assembly ones.
fn linked() -> bool {
    common::switch_is_assembly()
}

/// Whether a printed backtrace has a frame of exactly this function (not
/// one of the closures inside it, whose names begin with its name).
fn has_frame(backtrace: &str, function: &str) -> bool {
    backtrace.lines().any(|line| {
        line.trim()
            .split_once(": ")
            .is_some_and(|(n, name)| n.bytes().all(|b| b.is_ascii_digit()) && name == function)
    })
}

#[inline(never)]
fn capture_in_inner() -> String {
    black_box(Backtrace::force_capture()).to_string()
}

#[inline(never)]
fn resume_inner_from_outer(inner: &mut Coroutine<(), (), String>) -> String {
    match black_box(inner.resume(())) {
        Ok(CoroutineResult::Return(text)) => text,
        other => panic!("inner did not return: {other:?}"),
    }
}

#[inline(never)]
fn resume_outer_from_the_test(outer: &mut Coroutine<(), (), String>) -> String {
    match black_box(outer.resume(())) {
        Ok(CoroutineResult::Return(text)) => text,
        other => panic!("outer did not return: {other:?}"),
    }
}

#[test]
fn a_backtrace_captured_in_a_nested_coroutine_names_its_resumers() {
    nested_capture_from_a_named_frame();
}

/// The test's body, in a frame of its own: the test function itself may
/// be inlined into the harness's shim in a release build.
#[inline(never)]
fn nested_capture_from_a_named_frame() {
    let mut outer = Coroutine::new(|_, ()| {
        let mut inner = Coroutine::new(|_, ()| capture_in_inner());
        resume_inner_from_outer(&mut inner)
    });
    let text = resume_outer_from_the_test(&mut outer);
    let test = "backtraces::nested_capture_from_a_named_frame";
    assert!(has_frame(&text, "backtraces::capture_in_inner"), "{text}");
    // Through both coroutines' first frames, to the test function itself.
    let resumers = [
        "backtraces::resume_inner_from_outer",
        "backtraces::resume_outer_from_the_test",
        test,
    ];
    for function in resumers {
        assert_eq!(has_frame(&text, function), linked(), "{function}:\n{text}");
    }
}

#[inline(never)]
fn panic_in_the_coroutine() -> ! {
    panic!("a panic inside a coroutine");
}

#[inline(never)]
fn resume_where_the_panic_goes() {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|_, ()| panic_in_the_coroutine());
    let _ = black_box(co.resume(()));
}

#[test]
fn a_panic_in_a_coroutine_prints_a_backtrace_with_the_resume_site() {
    let test = "a_panic_in_a_coroutine_prints_a_backtrace_with_the_resume_site";
    let mut cmd = common::child_command(test, test);
    cmd.env("RUST_BACKTRACE", "1");
    if std::env::var_os(common::CHILD_ENV).is_some_and(|v| v == test) {
        // The panic resumes here, in the caller of resume, and propagates:
        // this child test fails, after the hook printed the backtrace.
        resume_where_the_panic_goes();
        return;
    }
    let out = common::output_within_deadline(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a panic inside a coroutine"),
        "{}",
        common::describe(&out)
    );
    assert!(
        has_frame(&stderr, "backtraces::panic_in_the_coroutine"),
        "{}",
        common::describe(&out)
    );
    assert_eq!(
        has_frame(&stderr, "backtraces::resume_where_the_panic_goes"),
        linked(),
        "{}",
        common::describe(&out)
    );
}
