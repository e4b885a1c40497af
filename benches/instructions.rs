//! Runs one benchmark operation N times, for counting instructions per
//! operation under callgrind (`benches/callgrind.py` runs it twice with
//! different N and divides the difference, so setup cancels out). Counts
//! are deterministic where times on a shared machine are not, and they
//! cannot be flattered by a loop that inlines what callers would not.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! target/release/deps/instructions-* CASE N     # CASE: see `CASES`
//! ```

#[path = "support/ops.rs"]
mod ops;

use std::hint::black_box;

use corosensei::stack::DefaultStack;

/// Runs a case's operation `n` times.
type Run = fn(u64);

/// Every case: its name (criterion's group/id for the same operation) and
/// what runs it.
const CASES: &[(&str, Run)] = &[
    ("round_trip/ucoro_safe", |n| {
        black_box(ops::echo_n(
            &mut ops::ucoro_echo(),
            n,
            ops::ucoro_round_trip,
        ));
    }),
    ("round_trip/corosensei", |n| {
        black_box(ops::echo_n(
            &mut ops::corosensei_echo(),
            n,
            ops::corosensei_round_trip,
        ));
    }),
    ("step/ucoro_safe", |n| {
        black_box(ops::echo_n(&mut ops::ucoro_echo(), n, ops::ucoro_step));
    }),
    ("step/corosensei", |n| {
        black_box(ops::echo_n(
            &mut ops::corosensei_echo(),
            n,
            ops::corosensei_step,
        ));
    }),
    ("generator_next/ucoro", |n| {
        black_box(ops::sum_n(&mut ops::ucoro_counter(), n, ops::ucoro_next));
    }),
    ("generator_next/corosensei", |n| {
        black_box(ops::sum_n(
            &mut ops::corosensei_counter(),
            n,
            ops::corosensei_next,
        ));
    }),
    ("lifecycle/ucoro_safe", |n| {
        (0..n).for_each(|_| _ = black_box(ops::ucoro_lifecycle()));
    }),
    ("lifecycle/corosensei_reused_stack", |n| {
        let mut stack = Some(DefaultStack::default());
        (0..n).for_each(|_| _ = black_box(ops::corosensei_lifecycle_reused(&mut stack)));
    }),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to do.
    if args.first().map_or(true, |a| a.starts_with("--")) {
        if args.iter().any(|a| a == "--list") {
            CASES.iter().for_each(|(name, _)| println!("{name}"));
        }
        return;
    }
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: instructions CASE N");
    let (_, run) = CASES
        .iter()
        .find(|(name, _)| *name == args[0])
        .unwrap_or_else(|| panic!("unknown case {}", args[0]));
    run(n);
}
