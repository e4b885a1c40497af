//! Writes `BENCHMARKS.md` and `docs/benchmarks.svg` from criterion's results
//! of `cargo bench --bench switch` (benches/switch.rs). Every number in those
//! two files comes from here: do not edit them by hand, rerun instead.
//!
//! ```text
//! cargo bench --bench switch
//! cargo run --release --manifest-path benches/report/Cargo.toml [CRITERION_DIR [OUTPUT_ROOT]]
//! ```
//!
//! CRITERION_DIR is where criterion wrote its results; without the argument:
//! `$UCORO_CRITERION_DIR`, else criterion's own rule (`$CRITERION_HOME`,
//! else `$CARGO_TARGET_DIR/criterion`), else `./target/criterion`.
//! OUTPUT_ROOT defaults to the ucoro crate's directory (two levels up). `$UCORO_BENCH_COMMAND`
//! overrides the bench command the report names.
//!
//! Only std is used: a small JSON reader for criterion's `estimates.json`
//! and `benchmark.json`, and a hand-written SVG bar chart (log scale).

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const DEFAULT_BENCH_COMMAND: &str = "cargo bench --bench switch";
const REPORT_COMMAND: &str = "cargo run --release --manifest-path benches/report/Cargo.toml";

/// The known groups, in report order: (group, title, what one iteration is).
const GROUPS: &[(&str, &str, &str)] = &[
    (
        "round_trip",
        "Round trip",
        "one resume + one suspend of a long-lived coroutine (for `thread_condvar`: a token handed to another thread and back through `Mutex` + `Condvar`)",
    ),
    (
        "step",
        "Round trip inside a function that returns",
        "one resume + one suspend of a long-lived coroutine, the resume inside a function that is not inlined and returns (an iterator's `next`, a protocol step)",
    ),
    (
        "generator_next",
        "Generator value through a non-inlined `next()`",
        "one value of an endless generator, fetched by a `next()` that is not inlined",
    ),
    (
        "lifecycle",
        "Lifecycle",
        "create a coroutine, run it to its end, free it",
    ),
    (
        "nesting_1000",
        "Nesting 1000 deep",
        "a chain of 1000 coroutines (64 KiB stacks), each created and resumed by its parent; every level yields once back up, then the top is resumed once more and every level returns",
    ),
    (
        "generator_1m",
        "Generator, 1 million values",
        "a generator yielding 0..1 000 000, summed by the caller",
    ),
];

/// The known benchmarks, in report order: (group, id, description).
const BENCHES: &[(&str, &str, &str)] = &[
    ("round_trip", "ucoro_c", "ucoro C API: `coroutine_yieldto` + `coroutine_yield`, default switch"),
    ("round_trip", "ucoro_c_setjmp", "ucoro C API built with `-DUCORO_SWITCH_SETJMP` (portable `_setjmp` path)"),
    ("round_trip", "ucoro_c_ucontext", "ucoro C API built with `-DUCORO_SWITCH_UCONTEXT` (strict: `swapcontext` every switch)"),
    ("round_trip", "ucoro_safe", "ucoro safe API: `Coroutine<u64, u64, ()>::resume` + `Yielder::suspend`"),
    ("round_trip", "corosensei", "corosensei `Coroutine<u64, u64, ()>::resume` + `suspend`"),
    ("round_trip", "boost_context", "Boost.Context `jump_fcontext` ping-pong (`context` crate, `ProtectedFixedSizeStack`)"),
    ("round_trip", "thread_condvar", "two OS threads, `Mutex` + `Condvar`: there and back"),
    ("step", "ucoro_safe", "ucoro safe API, `Coroutine::resume` in an `#[inline(never)]` function"),
    ("step", "corosensei", "corosensei, `Coroutine::resume` in an `#[inline(never)]` function"),
    ("generator_next", "ucoro", "`ucoro::Generator`, `Iterator::next` in an `#[inline(never)]` function"),
    ("generator_next", "corosensei", "corosensei `Coroutine<(), u64, ()>::resume` in an `#[inline(never)]` function"),
    ("lifecycle", "ucoro_c", "`coroutine_init` + `coroutine_yieldto` until exited + `coroutine_release` (16 MiB default stack)"),
    ("lifecycle", "ucoro_c_setjmp", "the same, `-DUCORO_SWITCH_SETJMP` build"),
    ("lifecycle", "ucoro_c_ucontext", "the same, `-DUCORO_SWITCH_UCONTEXT` build"),
    ("lifecycle", "ucoro_safe", "`Coroutine::new` + `resume` + drop (16 MiB default stack)"),
    ("lifecycle", "corosensei_fresh_stack", "corosensei `Coroutine::new` + `resume` + drop (1 MiB `DefaultStack`)"),
    ("lifecycle", "corosensei_reused_stack", "corosensei `Coroutine::with_stack` + `resume` + `into_stack`, the stack handed back each time"),
    ("nesting_1000", "ucoro_c", "ucoro C API"),
    ("nesting_1000", "ucoro_safe", "ucoro safe API (`Builder::stack_size`)"),
    ("nesting_1000", "corosensei", "corosensei (`DefaultStack::new`)"),
    ("generator_1m", "ucoro", "`ucoro::Generator` summed as an `Iterator`"),
    ("generator_1m", "corosensei", "corosensei `Coroutine<(), u64, ()>` resumed in a loop"),
];

/// benches/switch.rs writes the start time of a measuring run here (in the
/// criterion directory): older results are left over from earlier runs,
/// flagged, and not used for the targets and ratios.
const RUN_MARKER: &str = "ucoro-bench-run";
/// Without the marker: criterion writes each result as its benchmark ends,
/// so walking back from the newest result, a gap longer than this ends the
/// run.
const RUN_GAP_SECS: u64 = 600;

struct Result_ {
    group: String,
    id: String,
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
    modified: u64,
    stale: bool,
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: bench_report [CRITERION_DIR [OUTPUT_ROOT]]");
        return;
    }
    let criterion_dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(default_criterion_dir);
    let out_root = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));

    let results = read_results(&criterion_dir);
    if results.is_empty() {
        eprintln!(
            "bench_report: no criterion results under {}; run `{}` first",
            criterion_dir.display(),
            DEFAULT_BENCH_COMMAND
        );
        std::process::exit(1);
    }
    let mut results = order(results);
    let newest = mark_stale(&mut results, &criterion_dir);

    let (per_op_path, per_op) = read_per_op(&criterion_dir);
    let mut md = markdown(&results, newest, per_op.as_ref());
    md.push_str(&instructions_section(
        &per_op_path,
        per_op.as_ref(),
        &results,
    ));
    md.push_str(&scale_section(&criterion_dir));
    let svg = svg_chart(&results);
    let md_path = out_root.join("BENCHMARKS.md");
    md.push_str(&kept_sections(&md_path));
    let svg_path = out_root.join("docs").join("benchmarks.svg");
    fs::create_dir_all(svg_path.parent().unwrap()).expect("create docs/");
    fs::write(&md_path, md).expect("write BENCHMARKS.md");
    fs::write(&svg_path, svg).expect("write docs/benchmarks.svg");
    println!(
        "bench_report: {} results from {} -> {}, {}",
        results.len(),
        criterion_dir.display(),
        md_path.display(),
        svg_path.display()
    );
}

fn default_criterion_dir() -> PathBuf {
    if let Some(d) = env::var_os("UCORO_CRITERION_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = env::var_os("CRITERION_HOME") {
        return PathBuf::from(d);
    }
    if let Some(d) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("criterion");
    }
    PathBuf::from("target").join("criterion")
}

// ---------------------------------------------------------------------------
// Reading criterion's output: <dir>/<group>/<id>/new/{benchmark,estimates}.json

fn read_results(dir: &Path) -> Vec<Result_> {
    let mut out = Vec::new();
    for group_dir in sorted_dirs(dir) {
        for bench_dir in sorted_dirs(&group_dir) {
            let new = bench_dir.join("new");
            let Ok(estimates) = fs::read_to_string(new.join("estimates.json")) else {
                continue;
            };
            let Some(est) = Json::parse(&estimates) else {
                eprintln!("bench_report: cannot parse {}", new.display());
                continue;
            };
            let median = est.get("median");
            let (Some(median_ns), Some(low_ns), Some(high_ns)) = (
                median
                    .and_then(|m| m.get("point_estimate"))
                    .and_then(Json::num),
                median
                    .and_then(|m| m.get("confidence_interval"))
                    .and_then(|c| c.get("lower_bound"))
                    .and_then(Json::num),
                median
                    .and_then(|m| m.get("confidence_interval"))
                    .and_then(|c| c.get("upper_bound"))
                    .and_then(Json::num),
            ) else {
                eprintln!("bench_report: no median in {}", new.display());
                continue;
            };
            // Prefer criterion's own names; fall back to the directory names.
            let meta = fs::read_to_string(new.join("benchmark.json"))
                .ok()
                .and_then(|s| Json::parse(&s));
            let name_of = |key: &str, dir: &Path| {
                meta.as_ref()
                    .and_then(|m| m.get(key))
                    .and_then(Json::str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| dir.file_name().unwrap().to_string_lossy().into_owned())
            };
            let modified = fs::metadata(new.join("estimates.json"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            out.push(Result_ {
                group: name_of("group_id", &group_dir),
                id: name_of("function_id", &bench_dir),
                median_ns,
                low_ns,
                high_ns,
                modified,
                stale: false,
            });
        }
    }
    out
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "report"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Known groups and benchmarks first, in the order above; others after.
fn order(results: Vec<Result_>) -> Vec<Result_> {
    let rank = |r: &Result_| {
        let g = GROUPS
            .iter()
            .position(|(g, ..)| *g == r.group)
            .unwrap_or(GROUPS.len());
        let b = BENCHES
            .iter()
            .position(|(g, id, _)| *g == r.group && *id == r.id)
            .unwrap_or(BENCHES.len());
        (g, b, r.group.clone(), r.id.clone())
    };
    let mut keyed: Vec<_> = results.into_iter().map(|r| (rank(&r), r)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// Flags the results that are not from the newest run; returns the time of
/// the newest result.
fn mark_stale(results: &mut [Result_], criterion_dir: &Path) -> u64 {
    let mut times: Vec<u64> = results.iter().map(|r| r.modified).collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    let newest = times.first().copied().unwrap_or(0);
    let marker = fs::read_to_string(criterion_dir.join(RUN_MARKER))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t <= newest);
    let run_start = match marker {
        Some(t) => t,
        None => {
            let mut start = newest;
            for t in times {
                if start - t > RUN_GAP_SECS {
                    break;
                }
                start = t;
            }
            start
        }
    };
    for r in results.iter_mut() {
        r.stale = r.modified < run_start;
    }
    newest
}

/// A result of the newest run.
fn find<'a>(results: &'a [Result_], group: &str, id: &str) -> Option<&'a Result_> {
    results
        .iter()
        .find(|r| r.group == group && r.id == id && !r.stale)
}

// ---------------------------------------------------------------------------
// BENCHMARKS.md

fn markdown(results: &[Result_], newest: u64, per_op: Option<&Json>) -> String {
    let bench_command =
        env::var("UCORO_BENCH_COMMAND").unwrap_or_else(|_| DEFAULT_BENCH_COMMAND.to_owned());
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "<!-- Generated by benches/report from criterion's results: do not edit by hand. -->\n"
    );
    let _ = writeln!(
        s,
        "Produced by `{bench_command}` followed by `{REPORT_COMMAND}`. \
         Every figure is criterion's median time per iteration, with its 95% \
         confidence interval; lower is better. All benchmarks ran in one \
         process with the same criterion settings. Where `benches/callgrind.py` \
         also timed an operation and its peer interleaved (see the \
         instructions table), the targets table takes that ratio instead, \
         and says so: on a shared machine criterion's sequential medians of \
         two benchmarks can catch different bursts of other work.\n"
    );
    let _ = writeln!(s, "- CPU: {}", cpu_model());
    let _ = writeln!(s, "- Kernel: Linux {}", kernel_release());
    let _ = writeln!(s, "- Measured: {} (UTC)", civil_date(newest));
    let _ = writeln!(s, "- Chart: [docs/benchmarks.svg](docs/benchmarks.svg)\n");
    let _ = writeln!(s, "![benchmark chart, log scale](docs/benchmarks.svg)\n");

    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(
        s,
        "What the project holds itself to today, each a ratio to a peer measured \
         in the same run; a **no** is open work, not a retired goal.\n"
    );
    let _ = writeln!(s, "| target | ucoro | reference | ratio | required | met |");
    let _ = writeln!(s, "|---|---|---|---:|---:|---|");
    for (t, ours, theirs) in targets(results, per_op) {
        let met = match t.met {
            Some(true) => "**yes**",
            Some(false) => "**no**",
            None => "?",
        };
        let _ = writeln!(
            s,
            "| {} | {ours} | {theirs} | {} | {} | {met} |",
            t.what, t.ratio, t.required
        );
    }
    s.push('\n');

    let mut groups: Vec<&str> = Vec::new();
    for r in results {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    let mut any_stale = false;
    for group in groups {
        let (title, what) = GROUPS
            .iter()
            .find(|(g, ..)| *g == group)
            .map_or((group, ""), |(_, t, w)| (*t, *w));
        let _ = writeln!(s, "## {title} (`{group}`)\n");
        if !what.is_empty() {
            let _ = writeln!(s, "One iteration: {what}.\n");
        }
        let coro = find(results, group, "corosensei");
        let boost = find(results, group, "boost_context");
        let reused = find(results, group, "corosensei_reused_stack");
        let (ref_a, ref_a_name) = match (coro, reused) {
            (Some(c), _) => (Some(c), "× corosensei"),
            (None, Some(c)) => (Some(c), "× corosensei (reused stack)"),
            _ => (None, ""),
        };
        let mut header = String::from("| benchmark | median | 95% CI |");
        let mut rule = String::from("|---|---:|---:|");
        if ref_a.is_some() {
            let _ = write!(header, " {ref_a_name} |");
            rule.push_str("---:|");
        }
        if boost.is_some() {
            header.push_str(" × Boost.Context |");
            rule.push_str("---:|");
        }
        header.push_str(" what |");
        rule.push_str("---|");
        let _ = writeln!(s, "{header}\n{rule}");
        for r in results.iter().filter(|r| r.group == group) {
            let stale = r.stale;
            any_stale |= stale;
            let _ = write!(
                s,
                "| `{}`{} | {} | {} – {} |",
                r.id,
                if stale { " †" } else { "" },
                fmt_time(r.median_ns),
                fmt_time(r.low_ns),
                fmt_time(r.high_ns)
            );
            if let Some(a) = ref_a {
                let _ = write!(s, " {} |", fmt_ratio(r.median_ns / a.median_ns));
            }
            if let Some(b) = boost {
                let _ = write!(s, " {} |", fmt_ratio(r.median_ns / b.median_ns));
            }
            let what = BENCHES
                .iter()
                .find(|(g, id, _)| *g == group && *id == r.id)
                .map_or("", |(.., w)| *w);
            let _ = writeln!(s, " {what} |");
        }
        s.push('\n');
    }
    let missing: Vec<String> = BENCHES
        .iter()
        .filter(|(g, id, _)| find(results, g, id).is_none())
        .map(|(g, id, _)| format!("`{g}/{id}`"))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(s, "Not measured in this run: {}.\n", missing.join(", "));
    }
    if any_stale {
        let _ = writeln!(
            s,
            "† left over from an earlier run (not used for ratios and targets): rerun the benchmarks.\n"
        );
    }
    let _ = writeln!(s, "## Reproducing\n");
    let _ = writeln!(s, "```sh");
    for (command, what) in [
        (DEFAULT_BENCH_COMMAND.to_owned(), "full run, a few minutes"),
        (
            format!("UCORO_BENCH_CPU=1 {DEFAULT_BENCH_COMMAND}"),
            "the same, the measuring thread pinned to CPU 1",
        ),
        (
            REPORT_COMMAND.to_owned(),
            "rewrites this file and docs/benchmarks.svg",
        ),
        (
            format!("{DEFAULT_BENCH_COMMAND} -- --test"),
            "smoke test: every benchmark once, no timing",
        ),
        (
            "UCORO_BENCH_CPU=1 python3 benches/callgrind.py".to_owned(),
            "instructions and interleaved times per operation (before the report)",
        ),
    ] {
        let _ = writeln!(s, "{command:<45} # {what}");
    }
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "Notes: each library runs with its default stack where the benchmark \
         does not set one (ucoro 16 MiB, corosensei 1 MiB, Boost.Context's \
         `ProtectedFixedSizeStack` default); only touched pages cost memory. \
         The `ucoro_c_setjmp` and `ucoro_c_ucontext` rows are copies of the C \
         library built with `-DUCORO_SWITCH_SETJMP` / `-DUCORO_SWITCH_UCONTEXT` \
         (cargo feature `bench-modes`, symbols renamed); the default row is \
         whatever switch the library picks without a macro."
    );
    s
}

/// The operations counted by `benches/callgrind.py`, each ucoro's beside
/// corosensei's: (what, ucoro's group/id, corosensei's), named as criterion
/// names the same operations.
const INSTRUCTION_ROWS: &[(&str, &str, &str)] = &[
    (
        "resume + suspend, tight loop",
        "round_trip/ucoro_safe",
        "round_trip/corosensei",
    ),
    (
        "resume + suspend inside a non-inlined function that returns",
        "step/ucoro_safe",
        "step/corosensei",
    ),
    (
        "a generator's value through a non-inlined `next()`",
        "generator_next/ucoro",
        "generator_next/corosensei",
    ),
    (
        "create, run, drop (corosensei: its stack reused)",
        "lifecycle/ucoro_safe",
        "lifecycle/corosensei_reused_stack",
    ),
    (
        "C API: `coroutine_init`, run to its end, `coroutine_release`",
        "lifecycle/ucoro_c",
        "lifecycle/corosensei_reused_stack",
    ),
];

/// What `benches/callgrind.py` saved (`<criterion dir>/../callgrind.json`):
/// its path, and its contents if it is there.
fn read_per_op(criterion_dir: &Path) -> (PathBuf, Option<Json>) {
    let path = criterion_dir
        .parent()
        .map(|p| p.join("callgrind.json"))
        .unwrap_or_else(|| PathBuf::from("target/callgrind.json"));
    let json = fs::read_to_string(&path)
        .ok()
        .and_then(|text| Json::parse(&text));
    (path, json)
}

/// An operation's interleaved best time (ns) from `benches/callgrind.py`.
fn interleaved_ns(per_op: Option<&Json>, case: &str) -> Option<f64> {
    per_op?.get("interleaved")?.get("ns")?.get(case)?.num()
}

/// Instructions per operation from `benches/callgrind.py`, beside the
/// interleaved times it took and criterion's times of the same operations:
/// counts that neither the machine's drift nor a loop that inlines more
/// than callers would can flatter.
fn instructions_section(path: &Path, counts: Option<&Json>, results: &[Result_]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## Instructions per operation (callgrind)\n");
    let Some(counts) = counts else {
        let _ = writeln!(
            s,
            "Not measured in this run: `python3 benches/callgrind.py` writes {}.",
            path.display()
        );
        return s;
    };
    let machine = counts.get("machine").and_then(Json::str).unwrap_or("?");
    // A setting of the interleaved timing (0 if the file predates it).
    let timing = |key: &str| {
        counts
            .get("interleaved")
            .and_then(|i| i.get(key))
            .and_then(Json::num)
            .unwrap_or(0.0)
    };
    let _ = writeln!(
        s,
        "Counted by `python3 benches/callgrind.py` ({machine}, release build): \
         each operation runs under callgrind twice, for two counts of \
         operations, and the difference is divided by the difference of the \
         counts, so setup cancels out. Unlike times these do not drift with \
         the machine. The lifecycle counts include the C library's Valgrind \
         client requests for each stack handed out and given back (about \
         90 instructions), which a run outside Valgrind skips.\n\n\
         The interleaved times are the same script's: each pair alone in a \
         process, the best of {rounds} batches of {n} operations, ucoro's and \
         corosensei's batches alternating, in thread CPU time, and the best \
         over {processes} such processes run one after another (other work on \
         a shared machine only ever adds time; a phase of it can outlast a \
         process, and slows the side that runs more instructions more). The \
         last columns are criterion's medians, from the run above.\n",
        processes = timing("processes"),
        rounds = timing("rounds"),
        n = timing("n"),
    );
    let _ = writeln!(
        s,
        "| operation | ucoro instructions | corosensei instructions | ratio | ucoro interleaved | corosensei interleaved | ratio | ucoro criterion | corosensei criterion | ratio |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let count = |case: &str| {
        counts
            .get("instructions")
            .and_then(|i| i.get(case))
            .and_then(Json::num)
    };
    let time = |case: &str| {
        let (group, id) = case.split_once('/')?;
        find(results, group, id).map(|r| r.median_ns)
    };
    let cell = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "–".to_owned(), f);
    for (what, ours, theirs) in INSTRUCTION_ROWS {
        let (io, it) = (count(ours), count(theirs));
        let (no, nt) = (
            interleaved_ns(Some(counts), ours),
            interleaved_ns(Some(counts), theirs),
        );
        let (to, tt) = (time(ours), time(theirs));
        let _ = writeln!(
            s,
            "| {what} (`{ours}`) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(io, &|v| format!("{v:.0}")),
            cell(it, &|v| format!("{v:.0}")),
            cell(io.zip(it).map(|(a, b)| a / b), &fmt_ratio),
            cell(no, &fmt_time),
            cell(nt, &fmt_time),
            cell(no.zip(nt).map(|(a, b)| a / b), &fmt_ratio),
            cell(to, &fmt_time),
            cell(tt, &fmt_time),
            cell(to.zip(tt).map(|(a, b)| a / b), &fmt_ratio),
        );
    }
    s
}

/// The scale tables: `examples/million` runs saved as JSON next to
/// criterion's results (`<criterion dir>/../million/<name>.json`): one run
/// each of ucoro, corosensei (to its limit) and one mmap per stack at the
/// full count, and the interleaved comparison (`compare.json`) that gives
/// the ratios.
fn scale_section(criterion_dir: &Path) -> String {
    let dir = criterion_dir
        .parent()
        .map(|p| p.join("million"))
        .unwrap_or_else(|| PathBuf::from("target/million"));
    let read = |name: &str| {
        fs::read_to_string(dir.join(format!("{name}.json")))
            .ok()
            .and_then(|text| Json::parse(&text))
    };
    let rows: Vec<Json> = ["ucoro", "corosensei", "mmap"]
        .into_iter()
        .filter_map(read)
        .collect();
    let num = |j: &Json, k: &str| j.get(k).and_then(Json::num).unwrap_or(f64::NAN);
    let kib = |j: &Json, k: &str| format!("{:.2} KiB", num(j, k) / 1024.0);
    fn name(j: &Json) -> &str {
        j.get("library").and_then(Json::str).unwrap_or("?")
    }
    let mut s = String::new();
    let _ = writeln!(s, "\n## Scale: suspended coroutines at once (`million`)\n");
    if rows.is_empty() {
        let _ = writeln!(
            s,
            "Not measured in this run: see the commands below ({}).",
            dir.display()
        );
    } else {
        let _ = writeln!(
            s,
            "Each coroutine is created with the default stack size (16 MiB for \
             every library here), run to its first suspend and kept; memory is \
             the growth of VmRSS and VmPTE divided by the count. `mmap per \
             stack` is the originals' way (one mapping per stack, no guard), \
             with the top page touched as their `coroutine_init` does. One \
             process per row, so no times here: on a shared VM a run's page \
             faults cost 2-4x more or less depending on what ran just before \
             (the first of two back-to-back runs pays more, whichever it is). \
             Times are in the next table, measured side by side. `left after \
             all finish` is what of that memory (resident and page tables, in \
             all) the process still holds once every coroutine has run to its \
             end and been freed.\n"
        );
        let _ = writeln!(
            s,
            "| library | asked | suspended at once | resident / coroutine | page tables / coroutine | left after all finish | stopped by |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
        for j in &rows {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {} | {} | {:.1} MiB | {} |",
                name(j),
                num(j, "requested"),
                num(j, "created"),
                kib(j, "resident_per"),
                kib(j, "page_tables_per"),
                (num(j, "resident_left") + num(j, "page_tables_left")) / (1024.0 * 1024.0),
                j.get("stopped_by").and_then(Json::str).unwrap_or("—"),
            );
        }
    }
    if let Some(compare) = read("compare") {
        let libs = match compare.get("libraries") {
            Some(Json::Arr(v)) => v.as_slice(),
            _ => &[],
        };
        let mmap = libs.iter().find(|j| name(j) == "mmap per stack");
        let make = |j: &Json| num(j, "make_ns");
        let total = |j: &Json| num(j, "make_ns") + num(j, "start_ns");
        // j's time over mmap per stack's, by the measure `of`.
        let vs_mmap = |j: &Json, of: &dyn Fn(&Json) -> f64| mmap.map(|m| of(j) / of(m));
        let _ = writeln!(
            s,
            "\n### The same run, interleaved (`--compare`)\n\n\
             {:.0} of each in one process, a chunk of 1,000 of each in turn, so \
             that all see the same machine. `create` is `Builder::build`, \
             `coroutine_init`, or mmap + touching the top page; `first run` \
             runs it to its first suspend. `first touch only` is the floor: \
             the top page of each 16 MiB stride of one premade mapping \
             touched, nothing else. Each such coroutine needs one fresh data \
             page and one fresh page-table page, which the kernel must find \
             and zero, whatever the library.\n",
            num(&compare, "count")
        );
        let _ = writeln!(
            s,
            "| subject | create | first run | create + first run | vs mmap per stack: create | vs mmap per stack: total | resident + page tables |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        let ratio = |r: Option<f64>| r.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}x"));
        for j in libs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.2} KiB |",
                name(j),
                fmt_time(make(j)),
                fmt_time(num(j, "start_ns")),
                fmt_time(total(j)),
                ratio(vs_mmap(j, &make)),
                ratio(vs_mmap(j, &total)),
                (num(j, "resident_per") + num(j, "page_tables_per")) / 1024.0,
            );
        }
        if mmap.is_some() {
            // Create + first run against the first-touch floor.
            let vs_floor = |lib: &str| {
                let of = |n: &str| libs.iter().find(|j| name(j) == n).map(total);
                of(lib)
                    .zip(of("first touch only (floor)"))
                    .map_or(f64::NAN, |(o, f)| o / f)
            };
            let (safe, c) = (vs_floor("ucoro"), vs_floor("ucoro C API"));
            let _ = writeln!(
                s,
                "\nTarget: create + first run ≤ 1.2x the first-touch floor. {}: \
                 safe API {safe:.2}x, C API {c:.2}x.",
                if safe <= 1.2 && c <= 1.2 {
                    "Met"
                } else {
                    "Not met"
                }
            );
        }
    }
    let _ = writeln!(s, "\nProduced by:\n\n```sh");
    for (args, file) in [
        ("", "ucoro"),
        (" --peer corosensei", "corosensei"),
        (" --peer mmap", "mmap"),
        (" --compare", "compare"),
    ] {
        let _ = writeln!(
            s,
            "cargo run --release --example million --{args} --json target/million/{file}.json"
        );
    }
    let _ = writeln!(s, "```");
    s
}

/// One of the project's performance targets, checked against the results.
struct Target {
    what: &'static str,
    ratio: String,
    required: &'static str,
    met: Option<bool>,
}

/// The targets the project holds itself to today: every one compares ucoro
/// with a reference measured in the same run.
fn targets(results: &[Result_], per_op: Option<&Json>) -> Vec<(Target, String, String)> {
    let mut rows = Vec::new();
    let show = |r: Option<&Result_>| {
        r.map_or_else(
            || "not measured".to_owned(),
            |r| format!("`{}/{}` {}", r.group, r.id, fmt_time(r.median_ns)),
        )
    };
    let show_interleaved = |case: &str, ns: f64| format!("`{case}` {} (interleaved)", fmt_time(ns));
    // (what, group, ucoro id, reference id, limit of ucoro / reference)
    let slower_than: [(&str, &str, &str, &str, f64, &str); 7] = [
        (
            "C-API round trip ≤ Boost.Context's",
            "round_trip",
            "ucoro_c",
            "boost_context",
            1.0,
            "≤ 1×",
        ),
        (
            "safe-API round trip ≤ 1.5× corosensei's",
            "round_trip",
            "ucoro_safe",
            "corosensei",
            1.5,
            "≤ 1.5×",
        ),
        (
            "safe-API round trip inside a non-inlined function ≤ 1.5× corosensei's",
            "step",
            "ucoro_safe",
            "corosensei",
            1.5,
            "≤ 1.5×",
        ),
        (
            "safe-API generator through a non-inlined `next()` ≤ 1.5× corosensei's",
            "generator_next",
            "ucoro",
            "corosensei",
            1.5,
            "≤ 1.5×",
        ),
        (
            "safe-API generator ≤ 1.5× corosensei's",
            "generator_1m",
            "ucoro",
            "corosensei",
            1.5,
            "≤ 1.5×",
        ),
        (
            "C-API lifecycle ≤ 2× corosensei's reused-stack lifecycle",
            "lifecycle",
            "ucoro_c",
            "corosensei_reused_stack",
            2.0,
            "≤ 2×",
        ),
        (
            "safe-API lifecycle ≤ 2× corosensei's reused-stack lifecycle",
            "lifecycle",
            "ucoro_safe",
            "corosensei_reused_stack",
            2.0,
            "≤ 2×",
        ),
    ];
    for (what, group, ours, theirs, limit, required) in slower_than {
        let (our_case, their_case) = (format!("{group}/{ours}"), format!("{group}/{theirs}"));
        let both = interleaved_ns(per_op, &our_case).zip(interleaved_ns(per_op, &their_case));
        let (ratio, ours_shown, theirs_shown) = match both {
            Some((o, t)) => (
                Some(o / t),
                show_interleaved(&our_case, o),
                show_interleaved(&their_case, t),
            ),
            None => {
                let (o, t) = (find(results, group, ours), find(results, group, theirs));
                (
                    o.zip(t).map(|(o, t)| o.median_ns / t.median_ns),
                    show(o),
                    show(t),
                )
            }
        };
        rows.push((
            Target {
                what,
                ratio: ratio.map_or_else(|| "–".to_owned(), fmt_ratio),
                required,
                met: ratio.map(|r| r <= limit),
            },
            ours_shown,
            theirs_shown,
        ));
    }
    // Hand-off: the slower of ucoro's two APIs must still beat the threads
    // by 1000×.
    let ours = [
        find(results, "round_trip", "ucoro_c"),
        find(results, "round_trip", "ucoro_safe"),
    ]
    .into_iter()
    .flatten()
    .max_by(|a, b| a.median_ns.total_cmp(&b.median_ns));
    let threads = find(results, "round_trip", "thread_condvar");
    let speedup = ours.zip(threads).map(|(o, t)| t.median_ns / o.median_ns);
    rows.push((
        Target {
            what: "coroutine hand-off ≥ 1000× faster than a thread hand-off (the slower ucoro API)",
            ratio: speedup.map_or_else(|| "–".to_owned(), |s| format!("{s:.0}× faster")),
            required: "≥ 1000× faster",
            met: speedup.map(|s| s >= 1000.0),
        },
        show(ours),
        show(threads),
    ));
    rows
}

fn fmt_time(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v < 10.0 {
        2
    } else if v < 100.0 {
        1
    } else {
        0
    };
    format!("{v:.digits$} {unit}")
}

fn fmt_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}×")
    } else if r < 100.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.0}×")
    }
}

fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cpus} logical CPUs available")
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time; the time now if it is 0.
fn civil_date(secs: u64) -> String {
    let secs = if secs == 0 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    } else {
        secs
    };
    // Howard Hinnant's days-to-civil algorithm.
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

// ---------------------------------------------------------------------------
// docs/benchmarks.svg: horizontal bars, log scale, one panel per group.

fn svg_chart(results: &[Result_]) -> String {
    const WIDTH: f64 = 960.0;
    const LABEL_W: f64 = 300.0;
    const VALUE_W: f64 = 90.0;
    const ROW_H: f64 = 22.0;
    const HEAD_H: f64 = 30.0;
    const TOP: f64 = 50.0;
    const AXIS_H: f64 = 30.0;

    let lo = results
        .iter()
        .map(|r| r.median_ns)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = results
        .iter()
        .map(|r| r.median_ns)
        .fold(0.0_f64, f64::max)
        .max(lo * 10.0);
    let dec_lo = lo.log10().floor() as i32;
    let dec_hi = hi.log10().ceil() as i32;
    let plot_x0 = LABEL_W;
    let plot_w = WIDTH - LABEL_W - VALUE_W;
    let x_of =
        |ns: f64| plot_x0 + (ns.log10() - f64::from(dec_lo)) / f64::from(dec_hi - dec_lo) * plot_w;

    let mut groups: BTreeMap<usize, (&str, Vec<&Result_>)> = BTreeMap::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in results {
        let i = match seen.iter().position(|g| *g == r.group) {
            Some(i) => i,
            None => {
                seen.push(&r.group);
                seen.len() - 1
            }
        };
        groups.entry(i).or_insert((&r.group, Vec::new())).1.push(r);
    }
    let rows: usize = groups.values().map(|(_, v)| v.len()).sum();
    const LEGEND_H: f64 = 24.0;
    let height =
        TOP + groups.len() as f64 * HEAD_H + rows as f64 * ROW_H + AXIS_H + LEGEND_H + 10.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<!-- Generated by benches/report from criterion's results: do not edit by hand. -->"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" font-weight="bold">ucoro benchmarks: median time per iteration (log scale, lower is better)</text>"#,
        10
    );
    let plot_top = TOP - 8.0;
    let plot_bottom = height - AXIS_H - LEGEND_H - 10.0;
    let mut legend_x = 10.0;
    for (color, label) in [
        (UCORO_COLOR, "ucoro"),
        (PEER_COLOR, "corosensei / Boost.Context"),
        (THREAD_COLOR, "OS threads"),
    ] {
        let _ = writeln!(
            s,
            r#"<rect x="{legend_x:.1}" y="{:.1}" width="12" height="12" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            height - 24.0,
            legend_x + 17.0,
            height - 14.0,
            xml(label)
        );
        legend_x += 30.0 + 7.0 * label.len() as f64;
    }
    // Decade grid lines with labels.
    for dec in dec_lo..=dec_hi {
        let ns = 10f64.powi(dec);
        let x = x_of(ns);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{plot_top:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#dddddd"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555555">{}</text>"##,
            plot_bottom + 16.0,
            xml(&fmt_decade(ns))
        );
    }
    let mut y = TOP;
    for (group, rows) in groups.values() {
        let title = GROUPS
            .iter()
            .find(|(g, ..)| g == group)
            .map_or(*group, |(_, t, _)| *t);
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}" font-weight="bold">{} ({})</text>"#,
            y + 18.0,
            xml(title),
            xml(group)
        );
        y += HEAD_H;
        for r in rows {
            let color = if r.id.starts_with("ucoro") {
                UCORO_COLOR
            } else if r.id.starts_with("thread") {
                THREAD_COLOR
            } else {
                PEER_COLOR
            };
            let x1 = x_of(r.median_ns.max(10f64.powi(dec_lo)));
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LABEL_W - 8.0,
                y + 15.0,
                xml(&r.id)
            );
            let _ = writeln!(
                s,
                r#"<rect x="{plot_x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}/{}: {}</title></rect>"#,
                y + 3.0,
                (x1 - plot_x0).max(1.0),
                ROW_H - 6.0,
                xml(&r.group),
                xml(&r.id),
                xml(&fmt_time(r.median_ns))
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x1 + 5.0,
                y + 15.0,
                xml(&fmt_time(r.median_ns))
            );
            y += ROW_H;
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

const UCORO_COLOR: &str = "#c0392b";
const PEER_COLOR: &str = "#2e86c1";
const THREAD_COLOR: &str = "#7f8c8d";

fn fmt_decade(ns: f64) -> String {
    if ns < 1e3 {
        format!("{} ns", ns)
    } else if ns < 1e6 {
        format!("{} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{} ms", ns / 1e6)
    } else {
        format!("{} s", ns / 1e9)
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------
// A minimal JSON reader (enough for criterion's files).

enum Json {
    Null,
    Bool(#[allow(dead_code)] bool),
    Num(f64),
    Str(String),
    Arr(#[allow(dead_code)] Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Option<Json> {
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        (p.i == p.b.len()).then_some(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Option<Json> {
        let end = self.i + word.len();
        (self.b.get(self.i..end) == Some(word.as_bytes())).then(|| {
            self.i = end;
            v
        })
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut kv = Vec::new();
                if self.eat(b'}') {
                    return Some(Json::Obj(kv));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    kv.push((k, self.value()?));
                    if self.eat(b'}') {
                        return Some(Json::Obj(kv));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                if self.eat(b']') {
                    return Some(Json::Arr(v));
                }
                loop {
                    v.push(self.value()?);
                    if self.eat(b']') {
                        return Some(Json::Arr(v));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.lit("true", Json::Bool(true)),
            b'f' => self.lit("false", Json::Bool(false)),
            b'n' => self.lit("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()?
                    .parse()
                    .ok()
                    .map(Json::Num)
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)
                                .unwrap_or('\u{fffd}');
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

/// The section of the existing BENCHMARKS.md that contrib/qemu/bench.sh
/// writes (between its `<!-- qemu-bench: begin` and `<!-- qemu-bench: end`
/// lines), carried over so that regenerating this report keeps it.
fn kept_sections(md_path: &Path) -> String {
    let old = fs::read_to_string(md_path).unwrap_or_default();
    let mut kept = String::new();
    let mut inside = false;
    for line in old.lines() {
        if line.starts_with("<!-- qemu-bench: begin") {
            inside = true;
            kept.push('\n');
        }
        if inside {
            kept.push_str(line);
            kept.push('\n');
        }
        if line.starts_with("<!-- qemu-bench: end") {
            inside = false;
        }
    }
    kept
}
