//! A million suspended coroutines, each with its own guarded stack.
//!
//! Creates N coroutines (default 1,000,000, default 16 MiB stack size), runs
//! each to its first suspend, and reports how many exist at once, their
//! resident memory and page-table memory per coroutine, and the time per
//! create; then resumes each to completion and reports the totals.
//!
//! ```text
//! cargo run --release --example million                 # 1,000,000 with ucoro
//! cargo run --release --example million -- 100000       # another count
//! cargo run --release --example million -- --peer corosensei   # the peer, to its limit
//! cargo run --release --example million -- --peer mmap  # baseline: one mmap per stack
//! cargo run --release --example million -- --json target/million.json
//! ```
//!
//! Memory is read from /proc/self/status (VmRSS, VmPTE) before and after,
//! so it includes everything the coroutines cost: stacks, the heap blocks
//! of the safe API, the C structs, and the page tables.

use std::fs;
use std::hint::black_box;
use std::time::Instant;

use ucoro::{CoroutineResult, Yielder};

/// A field of /proc/self/status, in bytes (the kernel reports kB).
fn proc_status_bytes(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn memory() -> (u64, u64) {
    (proc_status_bytes("VmRSS:"), proc_status_bytes("VmPTE:"))
}

struct Report {
    library: &'static str,
    requested: usize,
    created: usize,
    create_ns: f64,
    resident_per: f64,
    page_tables_per: f64,
    resume_ns: f64,
    stopped_by: Option<String>,
}

impl Report {
    fn print(&self) {
        println!("library:                {}", self.library);
        println!("requested:              {}", self.requested);
        println!("suspended at once:      {}", self.created);
        if let Some(why) = &self.stopped_by {
            println!("stopped early:          {why}");
        }
        println!(
            "create + first run:     {:.0} ns per coroutine",
            self.create_ns
        );
        println!(
            "resident memory:        {:.0} bytes per coroutine ({:.2} KiB)",
            self.resident_per,
            self.resident_per / 1024.0
        );
        println!(
            "page tables:            {:.0} bytes per coroutine ({:.2} KiB)",
            self.page_tables_per,
            self.page_tables_per / 1024.0
        );
        println!(
            "resident + page tables: {:.2} KiB per coroutine",
            (self.resident_per + self.page_tables_per) / 1024.0
        );
        println!(
            "resume to completion:   {:.0} ns per coroutine",
            self.resume_ns
        );
    }

    fn json(&self) -> String {
        format!(
            "{{\"library\":\"{}\",\"requested\":{},\"created\":{},\"create_ns\":{:.1},\
             \"resident_per\":{:.1},\"page_tables_per\":{:.1},\"resume_ns\":{:.1},\
             \"stopped_by\":{}}}",
            self.library,
            self.requested,
            self.created,
            self.create_ns,
            self.resident_per,
            self.page_tables_per,
            self.resume_ns,
            match &self.stopped_by {
                Some(s) => format!("\"{}\"", s.replace('"', "'")),
                None => "null".into(),
            }
        )
    }
}

/// Measures one library: `create(i)` makes item i in its suspended state
/// (or says why it cannot), `finish(item)` runs it to its end and returns
/// its result, which must be i + 1 (the check that each returned its own).
/// Items are kept until all are created, so they all exist at once.
fn measure<T>(
    library: &'static str,
    n: usize,
    mut create: impl FnMut(u64) -> Result<T, String>,
    mut finish: impl FnMut(&mut T) -> u64,
) -> Report {
    let (rss0, pte0) = memory();
    let start = Instant::now();
    let mut all = Vec::with_capacity(n);
    let mut stopped_by = None;
    for i in 0..n as u64 {
        match create(i) {
            Ok(item) => all.push(item),
            Err(why) => {
                stopped_by = Some(why);
                break;
            }
        }
    }
    let created = all.len();
    let per = |total: f64| total / created.max(1) as f64;
    let create_ns = per(start.elapsed().as_nanos() as f64);
    let (rss1, pte1) = memory();

    let start = Instant::now();
    let sum: u64 = all.iter_mut().map(&mut finish).sum();
    let resume_ns = per(start.elapsed().as_nanos() as f64);
    let expected: u64 = (1..=created as u64).sum();
    assert_eq!(sum, expected, "every coroutine returned its own result");
    black_box(&all);
    drop(all);

    Report {
        library,
        requested: n,
        created,
        create_ns,
        resident_per: per(rss1.saturating_sub(rss0) as f64),
        page_tables_per: per(pte1.saturating_sub(pte0) as f64),
        resume_ns,
        stopped_by,
    }
}

/// Each coroutine suspends once (so its stack is really in use), then
/// returns its input plus what the second resume passes (1).
fn run_ucoro(n: usize) -> Report {
    measure(
        "ucoro",
        n,
        |i| {
            let mut co = ucoro::Builder::new()
                .build(|y: &Yielder<u64, ()>, x: u64| x + y.suspend(()))
                .map_err(|e| e.to_string())?;
            let first = co.resume(i).expect("first resume");
            debug_assert_eq!(first, CoroutineResult::Yield(()));
            Ok(co)
        },
        |co| match co.resume(1).expect("second resume") {
            CoroutineResult::Return(v) => v,
            CoroutineResult::Yield(()) => unreachable!(),
        },
    )
}

fn run_corosensei(n: usize) -> Report {
    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine as CsCoroutine, CoroutineResult as CsResult};

    measure(
        "corosensei",
        n,
        |i| {
            // The default stack size of ucoro, for equal terms.
            let stack =
                DefaultStack::new(16 << 20).map_err(|e| format!("stack allocation failed: {e}"))?;
            let mut co =
                CsCoroutine::with_stack(stack, |y: &corosensei::Yielder<u64, ()>, x: u64| {
                    x + y.suspend(())
                });
            match co.resume(i) {
                CsResult::Yield(()) => Ok(co),
                CsResult::Return(_) => unreachable!(),
            }
        },
        |co| match co.resume(1) {
            CsResult::Return(v) => v,
            CsResult::Yield(()) => unreachable!(),
        },
    )
}

/// The baseline the originals pay: one 16 MiB mmap per stack (no guard, as
/// spice-gtk), with its top page touched as a suspended coroutine's is.
/// "Finishing" one unmaps it; there is nothing to resume.
fn run_mmap(n: usize) -> Report {
    const SIZE: usize = 16 << 20;
    struct Mapping(*mut libc::c_void, u64);
    let mut report = measure(
        "mmap per stack",
        n,
        |i| {
            // SAFETY: a fresh private anonymous mapping; no existing memory
            // is affected, and it is unmapped in the finishing step.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
            }
            // SAFETY: the last byte of the mapping just made, writable.
            unsafe { p.cast::<u8>().add(SIZE - 1).write_volatile(1) };
            Ok(Mapping(p, i))
        },
        |m| {
            // SAFETY: m.0 is a mapping of SIZE bytes made above, unmapped once.
            unsafe { libc::munmap(m.0, SIZE) };
            m.1 + 1
        },
    );
    report.resume_ns = 0.0; // unmapping is not resuming
    report
}

fn main() {
    let mut n = 1_000_000usize;
    let mut peer = None;
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--peer" => {
                let name = args.next().unwrap_or_default();
                assert!(
                    name == "corosensei" || name == "mmap",
                    "--peer takes corosensei or mmap"
                );
                peer = Some(name);
            }
            "--json" => json = Some(args.next().expect("--json takes a path")),
            count => n = count.replace('_', "").parse().expect("a coroutine count"),
        }
    }
    let report = match peer.as_deref() {
        Some("corosensei") => run_corosensei(n),
        Some(_) => run_mmap(n),
        None => run_ucoro(n),
    };
    report.print();
    if let Some(path) = json {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            fs::create_dir_all(dir).expect("create the JSON report's folder");
        }
        fs::write(&path, report.json() + "\n").expect("write the JSON report");
        println!("wrote {path}");
    }
}
