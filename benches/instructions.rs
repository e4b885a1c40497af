//! Runs one benchmark operation N times, for counting instructions per
//! operation under callgrind (`benches/callgrind.py` runs it twice with
//! different N and divides the difference, so setup cancels out). Counts
//! are deterministic where times on a shared machine are not, and they
//! cannot be flattered by a loop that inlines what callers would not.
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! target/release/deps/instructions-* CASE N     # CASE: see `CASES`
//! target/release/deps/instructions-* --time [N [ROUNDS [FILTER]]] [--json PATH]
//! ```
//!
//! `--time` prints each case's best time per operation over ROUNDS
//! alternating batches, beside its corosensei twin (`CASES` lists them in
//! pairs), for the pairs whose name contains FILTER; `--json` also writes
//! them to PATH (`benches/callgrind.py` does, for the report).

#[path = "support/ops.rs"]
mod ops;

use std::hint::black_box;

use corosensei::stack::DefaultStack;

/// Runs a case's operation `n` times, on state its setup made once.
type Run = Box<dyn FnMut(u64)>;

/// Sets a case up: makes its coroutine (or stack) and returns its [`Run`].
type Setup = fn() -> Run;

/// Every case: its name (criterion's group/id for the same operation) and
/// its setup, which returns what runs it. Making coroutines and stacks in
/// the setup keeps their cost (an `mmap` for a fresh corosensei stack, a
/// cached stack for ucoro) out of the operation being timed.
const CASES: &[(&str, Setup)] = &[
    ("round_trip/ucoro_safe", || {
        let mut co = ops::ucoro_echo();
        Box::new(move |n| _ = black_box(ops::echo_n(&mut co, n, ops::ucoro_round_trip)))
    }),
    ("round_trip/corosensei", || {
        let mut co = ops::corosensei_echo();
        Box::new(move |n| _ = black_box(ops::echo_n(&mut co, n, ops::corosensei_round_trip)))
    }),
    ("step/ucoro_safe", || {
        let mut co = ops::ucoro_echo();
        Box::new(move |n| _ = black_box(ops::echo_n(&mut co, n, ops::ucoro_step)))
    }),
    ("step/corosensei", || {
        let mut co = ops::corosensei_echo();
        Box::new(move |n| _ = black_box(ops::echo_n(&mut co, n, ops::corosensei_step)))
    }),
    ("generator_next/ucoro", || {
        let mut g = ops::ucoro_counter();
        Box::new(move |n| _ = black_box(ops::sum_n(&mut g, n, ops::ucoro_next)))
    }),
    ("generator_next/corosensei", || {
        let mut g = ops::corosensei_counter();
        Box::new(move |n| _ = black_box(ops::sum_n(&mut g, n, ops::corosensei_next)))
    }),
    ("lifecycle/ucoro_safe", || {
        Box::new(|n| (0..n).for_each(|_| _ = black_box(ops::ucoro_lifecycle())))
    }),
    ("lifecycle/corosensei_reused_stack", corosensei_lifecycle),
    // The C API's lifecycle (`lifecycle/ucoro_c`), against the same peer.
    ("lifecycle/ucoro_c", || {
        let mut co = ops::CCoroutine::new();
        Box::new(move |n| (0..n).for_each(|_| _ = black_box(co.lifecycle())))
    }),
    ("lifecycle/corosensei_reused_stack", corosensei_lifecycle),
    // A short coroutine that suspends once: the calls its start makes and
    // the returns its end makes no longer pair with the resumer's, which
    // likely costs return-address mispredictions that the lifecycle case
    // (balanced) and the round trip (steady) do not show.
    ("lifecycle_suspend/ucoro_safe", || {
        Box::new(|n| (0..n).for_each(|_| _ = black_box(ops::ucoro_lifecycle_suspend())))
    }),
    ("lifecycle_suspend/corosensei_reused_stack", || {
        let mut stack = Some(DefaultStack::default());
        Box::new(move |n| {
            (0..n).for_each(|_| _ = black_box(ops::corosensei_lifecycle_suspend(&mut stack)))
        })
    }),
];

/// The peer of both lifecycles: corosensei's, on a stack made once.
fn corosensei_lifecycle() -> Run {
    let mut stack = Some(DefaultStack::default());
    Box::new(move |n| {
        (0..n).for_each(|_| _ = black_box(ops::corosensei_lifecycle_reused(&mut stack)))
    })
}

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
fn best_times(n: u64, rounds: u32, filter: &str) -> Vec<(&'static str, f64)> {
    let mut best = vec![f64::INFINITY; CASES.len()];
    // Both cases of a pair, when either matches; set up once, before any
    // timing.
    let mut runs: Vec<Option<Run>> = CASES
        .iter()
        .enumerate()
        .map(|(i, (name, setup))| {
            let twin = CASES[i ^ 1].0;
            (name.contains(filter) || twin.contains(filter)).then(setup)
        })
        .collect();
    for _ in 0..rounds {
        for (i, run) in runs.iter_mut().enumerate() {
            let Some(run) = run else { continue };
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
    CASES
        .iter()
        .zip(best)
        .filter(|(_, ns)| ns.is_finite())
        .map(|((name, _), ns)| (*name, ns))
        .collect()
}

/// `--json PATH`: the best times as a JSON object, case name to
/// nanoseconds per operation (a case listed twice, as a peer of two, gets
/// its better time).
fn write_json(path: &str, times: &[(&str, f64)]) {
    let mut merged: Vec<(&str, f64)> = Vec::new();
    for &(name, ns) in times {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, best)) => *best = best.min(ns),
            None => merged.push((name, ns)),
        }
    }
    let body: Vec<String> = merged
        .iter()
        .map(|(name, ns)| format!("  \"{name}\": {ns:.3}"))
        .collect();
    std::fs::write(path, format!("{{\n{}\n}}\n", body.join(",\n")))
        .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().position(|a| a == "--json").map(|i| {
        let path = args.get(i + 1).expect("--json needs a path").clone();
        args.drain(i..i + 2);
        path
    });
    if args.first().is_some_and(|a| a == "--time") {
        let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
        let rounds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
        let times = best_times(n, rounds, args.get(3).map_or("", String::as_str));
        if let Some(path) = json {
            write_json(&path, &times);
        }
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
    let (_, setup) = CASES
        .iter()
        .find(|(name, _)| *name == args[0])
        .unwrap_or_else(|| panic!("unknown case {}", args[0]));
    setup()(n);
}
