//! Model-based property test of the C API (SPEC §2): random sequences of
//! create / yieldto / yield / return / release / init-again, performed by
//! whichever context is running, against the C library and against a small
//! pure-Rust model, compared op by op (values returned, who runs,
//! `coroutine_self()`, `exited`, diagnostics, release callbacks).
//!
//! The model and the driver live in `tests/model_driver/mod.rs`, shared with
//! the fuzz target in `fuzz/` (`cargo +nightly fuzz run ops`). Everything
//! runs in this process: the model only lets through ops that are legal or
//! reported misuse, so no case can abort (a `yield` from main is skipped:
//! its abort is tested in tests/c_semantics.rs).
//!
//! The diagnostic handler is process-wide: the driver installs it once and it
//! appends to a per-thread log, so the tests of this binary may run in
//! parallel threads.
//!
//! `PROPTEST_CASES` overrides the number of cases (10,000 by default).
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod model_driver;

use model_driver::{
    check, plan, run_real, Callback, Ctx, Diag, How, Op, ReleaseCb, Setup, Skip, StackSel, Target,
    DEFAULT_STACK, KEEP_RESULT, MIN_STACK, UNWIND_VALUE,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const PAGE: usize = 4096;

fn stack() -> impl Strategy<Value = StackSel> {
    prop_oneof![
        3 => Just(StackSel::Bytes(0)),
        2 => (1u32..=64).prop_map(StackSel::Bytes),
        2 => prop::sample::select(vec![4095u32, 4096, 16383, 16384, 16385, 32768])
            .prop_map(StackSel::Bytes),
        2 => ((16u32 << 10)..=(64 << 10)).prop_map(StackSel::Bytes),
        1 => Just(StackSel::Absurd),
        1 => Just(StackSel::Huge),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    let release = prop_oneof![
        4 => Just(ReleaseCb::None),
        1 => Just(ReleaseCb::Free),
        1 => Just(ReleaseCb::Keep),
    ];
    (stack(), release).prop_map(|(stack, release)| Setup { stack, release })
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0u8..8).prop_map(Target::Live),
        3 => (0u8..8).prop_map(Target::Slot),
        3 => Just(Target::Newest),
        1 => Just(Target::Main),
        1 => Just(Target::Current),
        1 => Just(Target::Null),
        1 => Just(Target::Zeroed),
        1 => Just(Target::Garbage),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => setup().prop_map(Op::Create),
        8 => (target(), any::<u8>()).prop_map(|(to, value)| Op::YieldTo { to, value }),
        5 => any::<u8>().prop_map(|value| Op::Yield { value }),
        2 => any::<u8>().prop_map(|value| Op::Return { value }),
        2 => target().prop_map(|target| Op::Release { target }),
        1 => (target(), setup()).prop_map(|(slot, setup)| Op::Reinit { slot, setup }),
    ]
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    ProptestConfig {
        cases,
        // A failing case is saved next to this file and replayed first.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The C library does what the model of SPEC §2 says, op by op.
    #[test]
    fn c_api_matches_the_model(ops in prop::collection::vec(op(), 0..40)) {
        if let Err(report) = check(&ops) {
            prop_assert!(false, "{}", report);
        }
    }
}

// ---------------------------------------------------------------------------
// The model itself, on hand-written sequences (and each checked against the
// library too)
// ---------------------------------------------------------------------------

fn create(bytes: u32) -> Op {
    Op::Create(Setup {
        stack: StackSel::Bytes(bytes),
        release: ReleaseCb::None,
    })
}

fn yieldto(to: Target, value: u8) -> Op {
    Op::YieldTo { to, value }
}

fn diag(function: &str, condition: &str) -> Diag {
    Diag {
        function: function.to_owned(),
        condition: condition.to_owned(),
    }
}

#[test]
fn model_says_yield_from_main_would_abort() {
    let p = plan(&[Op::Yield { value: 1 }, Op::Return { value: 2 }], PAGE);
    assert!(p.steps.is_empty());
    assert_eq!(
        p.skipped,
        [
            (0, Op::Yield { value: 1 }, Skip::WouldAbort),
            (1, Op::Return { value: 2 }, Skip::NotInCoroutine),
        ]
    );
}

#[test]
fn model_rounds_stack_sizes() {
    let sizes = [0, 1, 100, 16384, 16385, 65536];
    let ops: Vec<Op> = sizes.iter().map(|&n| create(n)).collect();
    let p = plan(&ops, PAGE);
    let got: Vec<_> = p.steps.iter().map(|s| s.expect.stack_size).collect();
    let want = [DEFAULT_STACK, MIN_STACK, MIN_STACK, 16384, 20480, 65536].map(Some);
    assert_eq!(got, want);
    check(&ops).unwrap_or_else(|r| panic!("{r}"));
}

/// Every NULL-returning case of yieldto in SPEC §2, one after the other.
#[test]
fn model_rejects_every_misuse_of_yieldto() {
    let ops = [
        create(0),                    // co0
        yieldto(Target::Null, 1),     // NULL
        yieldto(Target::Zeroed, 2),   // never initialised (zeros)
        yieldto(Target::Garbage, 3),  // never initialised (garbage)
        yieldto(Target::Main, 4),     // main, from main
        yieldto(Target::Current, 5),  // self (main)
        yieldto(Target::Newest, 6),   // co0 starts
        yieldto(Target::Current, 7),  // self (co0)
        yieldto(Target::Main, 8),     // main, on co0's chain
        create(1),                    // co1, nested
        yieldto(Target::Newest, 9),   // co1 starts, caller co0
        yieldto(Target::Slot(0), 10), // co0 waits for co1: has a caller
        Op::Return { value: 11 },     // co1 exits: back in co0
        yieldto(Target::Slot(1), 12), // exited
        Op::Return { value: 13 },     // co0 exits: back in main
        Op::Create(Setup {
            stack: StackSel::Absurd,
            release: ReleaseCb::None,
        }), // co2: init fails
        yieldto(Target::Newest, 14),  // failed init
        create(0),                    // co3
        Op::Release {
            target: Target::Newest,
        },
        yieldto(Target::Newest, 15), // released before it ran
    ];
    let p = plan(&ops, PAGE);
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    let y = "coroutine_yieldto";
    let refusals: Vec<(Ctx, Vec<Diag>)> = p
        .steps
        .iter()
        .filter(|s| !s.expect.diags.is_empty())
        .map(|s| {
            assert_eq!(s.expect.how, How::YieldtoReturned);
            assert_eq!(s.expect.value, 0, "misuse returns NULL");
            assert_eq!(s.expect.at, s.executor, "misuse does not switch");
            (s.executor, s.expect.diags.clone())
        })
        .collect();
    let want = [
        (Ctx::Main, diag(y, "to != NULL")),
        (Ctx::Main, diag(y, "to is initialised")),
        (Ctx::Main, diag(y, "to is initialised")),
        (Ctx::Main, diag(y, "!to->caller")),
        (Ctx::Main, diag(y, "!to->caller")),
        (Ctx::Co(0), diag(y, "!to->caller")),
        (Ctx::Co(0), diag(y, "!to->caller")),
        (Ctx::Co(1), diag(y, "!to->caller")),
        (Ctx::Co(0), diag(y, "!to->exited")),
        (Ctx::Main, diag(y, "to is initialised")),
        (Ctx::Main, diag(y, "to is initialised")),
    ]
    .map(|(c, d)| (c, vec![d]));
    assert_eq!(refusals, want);
    check(&ops).unwrap_or_else(|r| panic!("{r}"));
}

/// SPEC §2 "entry returns": a parent that exits while its child is
/// suspended returns to its own caller, and the child can be resumed later
/// by anyone.
#[test]
fn model_returns_to_the_caller_not_the_last_switcher() {
    let ops = [
        create(0),                   // co0
        yieldto(Target::Slot(0), 1), // main -> co0
        create(0),                   // co1 (in co0)
        yieldto(Target::Slot(1), 2), // co0 -> co1
        Op::Yield { value: 3 },      // co1 -> co0
        Op::Return { value: 4 },     // co0 exits -> main
        yieldto(Target::Slot(1), 5), // main resumes co1
        Op::Return { value: 6 },     // co1 exits -> main
    ];
    let p = plan(&ops, PAGE);
    let seen: Vec<(Ctx, How, isize)> = p
        .steps
        .iter()
        .map(|s| (s.expect.at, s.expect.how, s.expect.value))
        .collect();
    assert_eq!(
        seen,
        [
            (Ctx::Main, How::CallReturned, 0),
            (Ctx::Co(0), How::Started, 1),
            (Ctx::Co(0), How::CallReturned, 0),
            (Ctx::Co(1), How::Started, 2),
            (Ctx::Co(0), How::YieldtoReturned, 3),
            (Ctx::Main, How::YieldtoReturned, 4),
            (Ctx::Co(1), How::YieldReturned, 5),
            (Ctx::Main, How::YieldtoReturned, 6),
        ]
    );
    assert_eq!(p.steps[7].expect.exited, [true, true]);
    check(&ops).unwrap_or_else(|r| panic!("{r}"));
}

/// Release callbacks: run with `exited` already 1 when entry returns; a
/// negative one keeps the stack and is returned by coroutine_release.
#[test]
fn model_runs_release_callbacks() {
    let keep = Op::Create(Setup {
        stack: StackSel::Bytes(0),
        release: ReleaseCb::Keep,
    });
    let free = Op::Create(Setup {
        stack: StackSel::Bytes(0),
        release: ReleaseCb::Free,
    });
    let release = |t| Op::Release { target: t };
    let ops = [
        keep,                        // co0
        yieldto(Target::Slot(0), 1), // starts
        Op::Return { value: 2 },     // exits: callback, stack kept
        release(Target::Slot(0)),    // callback again, KEEP_RESULT
        free,                        // co1
        release(Target::Slot(1)),    // callback (not exited), 0
        release(Target::Slot(1)),    // already released: 0, no callback
    ];
    let p = plan(&ops, PAGE);
    let seen: Vec<(isize, Vec<Callback>)> = p
        .steps
        .iter()
        .map(|s| (s.expect.value, s.expect.callbacks.clone()))
        .collect();
    let cb = |slot, exited| Callback {
        slot: Some(slot),
        exited,
    };
    assert_eq!(
        seen,
        [
            (0, vec![]),
            (1, vec![]),
            (2, vec![cb(0, true)]),
            (KEEP_RESULT as isize, vec![cb(0, true)]),
            (0, vec![]),
            (0, vec![cb(1, false)]),
            (0, vec![]),
        ]
    );
    check(&ops).unwrap_or_else(|r| panic!("{r}"));
}

/// The plan ends with `return`s back to main; the unwinding is checked too.
#[test]
fn plan_unwinds_to_main() {
    let ops = [
        create(0),
        yieldto(Target::Newest, 1),
        create(0),
        yieldto(Target::Newest, 2),
    ];
    let p = plan(&ops, PAGE);
    let tail: Vec<_> = p.steps[4..]
        .iter()
        .map(|s| (s.op_index, s.executor, s.expect.at, s.expect.value))
        .collect();
    let unwind = UNWIND_VALUE as isize;
    assert_eq!(
        tail,
        [
            (None, Ctx::Co(1), Ctx::Co(0), unwind),
            (None, Ctx::Co(0), Ctx::Main, unwind),
        ]
    );
    check(&ops).unwrap_or_else(|r| panic!("{r}"));
}

/// A wrong prediction deep in a chain stops the driver, which unwinds to
/// main and cleans up: a model bug or a library bug fails the case, never
/// the process.
#[test]
fn driver_stops_cleanly_on_a_difference() {
    let ops = [
        create(0),
        yieldto(Target::Newest, 1),
        create(0),
        yieldto(Target::Newest, 2),
        Op::Yield { value: 3 },
        Op::Release {
            target: Target::Slot(1),
        },
    ];
    let mut p = plan(&ops, PAGE);
    p.steps[4].expect.value = 99; // the model "expects" another value
    let real = run_real(&p);
    assert_eq!(real.actual.len(), 5, "stops at the first difference");
    assert_eq!(real.actual[4].value, 3);
    assert!(real.ended_in_main);
    assert_eq!(real.leaked, 0);
    assert!(real.fixtures_intact);
}
