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

/// Each coroutine suspends once (so its stack is really in use), then
/// returns a value derived from its input.
fn run_ucoro(n: usize) -> Report {
    let (rss0, pte0) = memory();
    let start = Instant::now();
    let mut all = Vec::with_capacity(n);
    let mut stopped_by = None;
    for i in 0..n {
        let built = ucoro::Builder::new().build(|y: &Yielder<u64, ()>, x: u64| {
            let more = y.suspend(());
            x + more
        });
        let mut co = match built {
            Ok(co) => co,
            Err(e) => {
                stopped_by = Some(e.to_string());
                break;
            }
        };
        let first = co.resume(i as u64).expect("first resume");
        debug_assert_eq!(first, CoroutineResult::Yield(()));
        all.push(co);
    }
    let created = all.len();
    let create_ns = start.elapsed().as_nanos() as f64 / created.max(1) as f64;
    let (rss1, pte1) = memory();

    let start = Instant::now();
    let mut sum = 0u64;
    for co in all.iter_mut() {
        match co.resume(1).expect("second resume") {
            CoroutineResult::Return(v) => sum += v,
            CoroutineResult::Yield(()) => unreachable!(),
        }
    }
    let resume_ns = start.elapsed().as_nanos() as f64 / created.max(1) as f64;
    let expected: u64 = (0..created as u64).map(|i| i + 1).sum();
    assert_eq!(sum, expected, "every coroutine returned its own result");
    black_box(&all);
    drop(all);

    Report {
        library: "ucoro",
        requested: n,
        created,
        create_ns,
        resident_per: rss1.saturating_sub(rss0) as f64 / created.max(1) as f64,
        page_tables_per: pte1.saturating_sub(pte0) as f64 / created.max(1) as f64,
        resume_ns,
        stopped_by,
    }
}

fn run_corosensei(n: usize) -> Report {
    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine as CsCoroutine, CoroutineResult as CsResult};

    let (rss0, pte0) = memory();
    let start = Instant::now();
    let mut all = Vec::with_capacity(n);
    let mut stopped_by = None;
    for i in 0..n {
        // The default stack size of ucoro, for equal terms.
        let stack = match DefaultStack::new(16 << 20) {
            Ok(s) => s,
            Err(e) => {
                stopped_by = Some(format!("stack allocation failed: {e}"));
                break;
            }
        };
        let mut co = CsCoroutine::with_stack(stack, |y: &corosensei::Yielder<u64, ()>, x: u64| {
            let more = y.suspend(());
            x + more
        });
        match co.resume(i as u64) {
            CsResult::Yield(()) => {}
            CsResult::Return(_) => unreachable!(),
        }
        all.push(co);
    }
    let created = all.len();
    let create_ns = start.elapsed().as_nanos() as f64 / created.max(1) as f64;
    let (rss1, pte1) = memory();
    let start = Instant::now();
    let mut sum = 0u64;
    for co in all.iter_mut() {
        match co.resume(1) {
            CsResult::Return(v) => sum += v,
            CsResult::Yield(()) => unreachable!(),
        }
    }
    let resume_ns = start.elapsed().as_nanos() as f64 / created.max(1) as f64;
    let expected: u64 = (0..created as u64).map(|i| i + 1).sum();
    assert_eq!(sum, expected);
    drop(all);
    Report {
        library: "corosensei",
        requested: n,
        created,
        create_ns,
        resident_per: rss1.saturating_sub(rss0) as f64 / created.max(1) as f64,
        page_tables_per: pte1.saturating_sub(pte0) as f64 / created.max(1) as f64,
        resume_ns,
        stopped_by,
    }
}

/// The baseline the originals pay: one 16 MiB mmap per stack (no guard, as
/// spice-gtk), with its top page touched as a suspended coroutine's is.
fn run_mmap(n: usize) -> Report {
    const SIZE: usize = 16 << 20;
    let (rss0, pte0) = memory();
    let start = Instant::now();
    let mut maps = Vec::with_capacity(n);
    let mut stopped_by = None;
    for _ in 0..n {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected, and it is unmapped below.
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
            stopped_by = Some(format!("mmap failed: {}", std::io::Error::last_os_error()));
            break;
        }
        // SAFETY: the last byte of the mapping just made, writable.
        unsafe { p.cast::<u8>().add(SIZE - 1).write_volatile(1) };
        maps.push(p);
    }
    let created = maps.len();
    let create_ns = start.elapsed().as_nanos() as f64 / created.max(1) as f64;
    let (rss1, pte1) = memory();
    for p in maps {
        // SAFETY: each p is a mapping of SIZE bytes made above, unmapped once.
        unsafe { libc::munmap(p, SIZE) };
    }
    Report {
        library: "mmap per stack",
        requested: n,
        created,
        create_ns,
        resident_per: rss1.saturating_sub(rss0) as f64 / created.max(1) as f64,
        page_tables_per: pte1.saturating_sub(pte0) as f64 / created.max(1) as f64,
        resume_ns: 0.0,
        stopped_by,
    }
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
