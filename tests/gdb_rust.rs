//! gdb's view of the safe API's coroutines, through csrc/gdb/ucoro-gdb.py:
//! a backtrace taken inside a nested Rust coroutine goes on through its
//! resumers to the test's own frames, and `ucoro list` shows Rust
//! coroutines, running, suspended or not started, as it shows C ones. The switch the build uses (the
//! inlined one of src/arch/, or the C entry points) must leave the state
//! that gdb reads. The test runs itself under `gdb -batch`; skipped with a
//! line of output where gdb is missing, outside CI.
#![warn(clippy::undocumented_unsafe_blocks)]

mod common;

use std::process::Command;

use ucoro::{Coroutine, CoroutineResult};

/// Where gdb stops: a breakpoint trap raised in a frame with this name
/// (the `black_box` after the call keeps an optimised build from making
/// it a tail call, which would leave no such frame).
#[inline(never)]
fn stop_in_inner() {
    // SAFETY: raising a signal; gdb catches SIGTRAP (unhandled outside a
    // debugger, which only the child runs under).
    std::hint::black_box(unsafe { libc::raise(libc::SIGTRAP) });
}

#[inline(never)]
fn stop_with_both_suspended() {
    // SAFETY: as above.
    std::hint::black_box(unsafe { libc::raise(libc::SIGTRAP) });
}

#[inline(never)]
fn resume_inner(inner: &mut Coroutine<(), (), ()>) {
    assert_eq!(inner.resume(()).unwrap(), CoroutineResult::Yield(()));
}

/// The debuggee: a coroutine that resumes another, stopped inside the
/// inner one, then with both suspended.
#[inline(never)]
fn scenario() {
    // Made, never resumed: listed as not started.
    let fresh: Coroutine<(), (), ()> = Coroutine::new(|_, ()| ());
    let mut outer: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
        let mut inner: Coroutine<(), (), ()> = Coroutine::new(|y, ()| {
            stop_in_inner();
            y.suspend(());
        });
        resume_inner(&mut inner);
        y.suspend(());
    });
    assert_eq!(outer.resume(()).unwrap(), CoroutineResult::Yield(()));
    stop_with_both_suspended();
    drop(fresh);
}

/// The frames a backtrace inside the inner coroutine goes through, in order.
const ORDER: [&str; 4] = [
    "gdb_rust::stop_in_inner",
    "gdb_rust::resume_inner",
    "gdb_rust::scenario",
    "gdb_rust::gdb_sees_rust_coroutines_and_backtraces_through_their_resumers",
];

/// Where, in a backtrace gdb printed, the first frame of the function
/// `name` ends its name: the name followed by its arguments (a build with
/// debug information) or by its symbol's hash (a release build), not a
/// longer name such as a closure of it.
fn frame_of(bt: &str, name: &str) -> Option<usize> {
    bt.match_indices(name).find_map(|(at, _)| {
        let rest = &bt[at + name.len()..];
        let tail = match rest.strip_prefix("::h") {
            Some(hashed) => {
                let hex = hashed.bytes().take_while(u8::is_ascii_hexdigit).count();
                (hex == 16).then(|| &hashed[hex..])?
            }
            None => rest,
        };
        tail.starts_with(" (").then(|| bt.len() - tail.len())
    })
}

const TEST: &str = "gdb_sees_rust_coroutines_and_backtraces_through_their_resumers";

#[test]
#[inline(never)] // a frame of its own in the backtrace, optimised or not
fn gdb_sees_rust_coroutines_and_backtraces_through_their_resumers() {
    if std::env::var_os("UCORO_CHILD").is_some() {
        scenario();
        return;
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "gdb is missing in CI");
        println!("skipped: no gdb");
        return;
    }
    let extension = concat!(env!("CARGO_MANIFEST_DIR"), "/csrc/gdb/ucoro-gdb.py");
    let child = common::child_command(TEST, TEST);
    let mut gdb = Command::new("gdb");
    gdb.args(["-batch", "-nx", "-iex", &format!("source {extension}")])
        .args([
            "-ex",
            "set pagination off",
            "-ex",
            "handle SIGTRAP stop nopass",
        ])
        .args(["-ex", "run", "-ex", "echo ==inner-bt==\\n", "-ex", "bt"])
        .args(["-ex", "echo ==inner-list==\\n", "-ex", "ucoro list"])
        .args([
            "-ex",
            "continue",
            "-ex",
            "echo ==suspended-list==\\n",
            "-ex",
            "ucoro list",
        ])
        .args(["-ex", "kill", "--args"])
        .arg(child.get_program())
        .args(child.get_args());
    for (key, value) in child.get_envs() {
        if let Some(value) = value {
            gdb.env(key, value);
        }
    }
    let out = gdb.output().expect("run gdb");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    println!("{}", String::from_utf8_lossy(&out.stderr));
    // What gdb printed after the line `==name==`, up to the next such line.
    let section = |name: &str| {
        let head = format!("=={name}==\n");
        let start = text
            .find(&head)
            .unwrap_or_else(|| panic!("gdb printed no {name} section:\n{text}"))
            + head.len();
        let rest = &text[start..];
        rest.find("\n==").map_or(rest, |end| &rest[..end])
    };
    let bt = section("inner-bt");
    // The inner coroutine's frames, the outer one's resume of it, main's
    // resume of the outer one: each found after the one before. The
    // portable switch modes have no linked backtraces: there it ends at the
    // coroutine's first frame.
    let linked = common::switch_is_assembly();
    let order = if linked { &ORDER[..] } else { &ORDER[..1] };
    let mut rest = bt;
    for frame in order {
        let end = frame_of(rest, frame).unwrap_or_else(|| {
            panic!("the backtrace inside the inner coroutine lacks {frame} (after {order:?}'s earlier ones):\n{bt}")
        });
        rest = &rest[end..];
    }
    // Both coroutines' first frames, named with the coroutine each begins
    // (whichever start stub the build uses), not as the signal frame that
    // their CFI marks them.
    if linked {
        assert_eq!(
            bt.matches("[first frame of coroutine 0x").count(),
            2,
            "the backtrace names each coroutine's first frame:\n{bt}"
        );
        assert!(!bt.contains("<signal handler called>"), "{bt}");
    }
    // All are listed, with the state and caller the C side keeps: the
    // inner one running with the outer one as its caller, the outer one
    // switched out in its resume with the thread's main coroutine as its
    // caller; then both suspended, with no caller.
    let rows = |name: &str| -> Vec<String> {
        section(name)
            .lines()
            .filter(|l| l.starts_with("0x"))
            .map(str::to_owned)
            .collect()
    };
    let mut nested = rows("inner-list");
    assert_eq!(
        nested.len(),
        3,
        "ucoro list inside the inner coroutine:\n{nested:#?}"
    );
    let fresh = nested
        .iter()
        .position(|r| r.contains(" not started "))
        .expect("the coroutine never resumed, not started");
    nested.remove(fresh);
    let address = |row: &String| row.split_whitespace().next().unwrap().to_owned();
    let running = nested
        .iter()
        .find(|r| r.contains(" running "))
        .expect("a running one");
    let waiting = nested
        .iter()
        .find(|r| !r.contains(" running "))
        .expect("its resumer");
    assert!(
        running.contains(&format!("caller {}", address(waiting))),
        "{nested:#?}"
    );
    assert!(waiting.contains("(main of thread"), "{nested:#?}");
    let mut later = rows("suspended-list");
    assert_eq!(
        later.len(),
        3,
        "ucoro list with both suspended:\n{later:#?}"
    );
    later.retain(|r| !r.contains(" not started "));
    assert!(
        later
            .iter()
            .all(|r| r.contains(" suspended ") && r.contains("caller -")),
        "{later:#?}"
    );
}
