//! Runs one benchmark operation N times, for counting instructions per
//! operation under callgrind (`benches/callgrind.py` runs it twice with
//! different N and divides the difference, so setup cancels out). Counts
//! are deterministic where times on a shared machine are not, and they
//! cannot be flattered by a loop that inlines what callers would not.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! target/release/deps/instructions-* CASE N     # CASE: see `CASES`
//! target/release/deps/instructions-* --time [N [ROUNDS [FILTER]]]
//! ```
//!
//! `--time` prints each case's best time per operation over ROUNDS
//! alternating batches, beside its corosensei twin (`CASES` lists them in
//! pairs), for the pairs whose name contains FILTER.

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

/// This thread's CPU time in nanoseconds: unlike the wall clock, it does
/// not count the time other processes hold the CPU.
fn thread_cpu_ns() -> u128 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the timespec we pass; this clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// `--time`: each case's best CPU time per operation over `rounds` batches
/// of `n` operations, ucoro's and corosensei's batches alternating. On a
/// shared machine other work only ever adds time (cache misses, the
/// scheduler's own), so the minimum is the estimate least disturbed by it
/// (criterion's wall-clock medians, on a loaded machine, are not).
fn best_times(n: u64, rounds: u32, filter: &str) {
    let mut best = vec![f64::INFINITY; CASES.len()];
    for _ in 0..rounds {
        for (i, (name, run)) in CASES.iter().enumerate() {
            // Both cases of a pair, when either matches.
            let twin = CASES[i ^ 1].0;
            if !name.contains(filter) && !twin.contains(filter) {
                continue;
            }
            let start = thread_cpu_ns();
            run(n);
            let ns = (thread_cpu_ns() - start) as f64 / n as f64;
            best[i] = best[i].min(ns);
        }
    }
    for pair in CASES.iter().zip(&best).collect::<Vec<_>>().chunks(2) {
        let [((ours, _), a), ((theirs, _), b)] = pair else {
            continue;
        };
        if a.is_infinite() {
            continue;
        }
        println!(
            "{ours:24} {a:8.2} ns  {theirs:34} {b:8.2} ns  ratio {:.2}",
            *a / *b
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--time") {
        let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
        let rounds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
        best_times(n, rounds, args.get(3).map_or("", String::as_str));
        return;
    }
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
