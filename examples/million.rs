//! A million suspended coroutines, each with its own guarded stack.
//!
//! Creates N coroutines (default 1,000,000, default 16 MiB stack size), runs
//! each to its first suspend, and reports how many exist at once, their
//! resident memory and page-table memory per coroutine, and the time per
//! create and per first run; then resumes each to completion, frees it, and
//! reports what of that memory is still held once all have finished (what
//! a burst followed by quiet leaves behind).
//!
//! ```text
//! cargo run --release --example million                 # 1,000,000 with ucoro
//! cargo run --release --example million -- 100000       # another count
//! cargo run --release --example million -- --peer corosensei   # the peer, to its limit
//! cargo run --release --example million -- --peer mmap  # baseline: one mmap per stack
//! cargo run --release --example million -- --compare   # ucoro and baselines, interleaved
//! cargo run --release --example million -- 1000000 --peer ucoro --peer mmap   # two, interleaved
//! cargo run --release --example million -- --json target/million/ucoro.json
//! ```
//!
//! Subjects (`--peer`): `ucoro` (the safe API, the default), `c` (the C
//! API: `coroutine_init` then `coroutine_yieldto`), `corosensei`, `mmap`
//! (one 16 MiB mapping per stack with its top page touched: what the
//! originals' `coroutine_init` costs) and `floor` (only the top page of each
//! 16 MiB stride touched, in one premade mapping: what any coroutine with a
//! 16 MiB stack and one used page costs the kernel, whatever the library).
//!
//! Work goes in chunks of 1,000: each chunk is made (create, timed), then
//! started (first run, timed). Several `--peer`s run in the same process, a
//! chunk of each in turn (the order rotating every round), so that all see
//! the same machine: page faults cost several times more or less from one
//! minute to the next on a shared VM, and only a ratio measured this way
//! holds. `--compare` is `--peer ucoro --peer c --peer mmap --peer floor`;
//! with more than one subject the default count is 250,000 each (about
//! 2 GiB per subject).
//!
//! Memory is read from /proc/self/status (VmRSS, VmPTE) around each chunk,
//! so it includes everything a subject costs: stacks, the caller's structs,
//! and the page tables.

use std::ffi::c_void;
use std::fs;
use std::hint::black_box;
use std::time::Instant;

use ucoro::{sys, Coroutine, CoroutineResult, Yielder};

/// The stack size every subject uses: ucoro's default.
const STACK: usize = 16 << 20;
/// Coroutines made (then started) in one timed step.
const CHUNK: usize = 1000;

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

/// One way of holding suspended coroutines (or, for the baselines, the
/// memory a suspended coroutine needs). Item i is made with input i; its
/// finish returns i + 1, the check that each ran with its own data.
trait Subject {
    fn name(&self) -> &'static str;
    /// Makes item i (nothing runs yet), or says why it cannot.
    fn make(&mut self, i: u64) -> Result<(), String>;
    /// Runs item i, made before, to its first suspend.
    fn start(&mut self, i: usize);
    /// Runs every item to its end and frees it, and the memory that held
    /// the items (so that what is left after is the subject's); the sum of
    /// their results.
    fn finish(&mut self) -> u64;
}

/// The safe API: `Builder::build` then `resume`.
struct UcoroSafe(Vec<Coroutine<u64, (), u64>>);

impl Subject for UcoroSafe {
    fn name(&self) -> &'static str {
        "ucoro"
    }
    fn make(&mut self, _: u64) -> Result<(), String> {
        let co = ucoro::Builder::new()
            .build(|y: &Yielder<u64, ()>, x: u64| x + y.suspend(()))
            .map_err(|e| e.to_string())?;
        self.0.push(co);
        Ok(())
    }
    fn start(&mut self, i: usize) {
        let first = self.0[i].resume(i as u64).expect("first resume");
        debug_assert_eq!(first, CoroutineResult::Yield(()));
    }
    fn finish(&mut self) -> u64 {
        let sum = self
            .0
            .iter_mut()
            .map(|co| match co.resume(1).expect("second resume") {
                CoroutineResult::Return(v) => v,
                CoroutineResult::Yield(()) => unreachable!(),
            })
            .sum();
        self.0 = Vec::new();
        sum
    }
}

/// The C API, as a C program uses it: structs in the caller's array,
/// `coroutine_init`, then `coroutine_yieldto`.
struct UcoroC(Vec<sys::coroutine>);

unsafe extern "C" fn c_body(arg: *mut c_void) -> *mut c_void {
    // SAFETY: called by the library as a coroutine's entry, so yielding is
    // allowed; the values are plain integers carried in pointers.
    let more = unsafe { sys::coroutine_yield(arg) };
    (arg as usize + more as usize) as *mut c_void
}

impl Subject for UcoroC {
    fn name(&self) -> &'static str {
        "ucoro C API"
    }
    fn make(&mut self, _: u64) -> Result<(), String> {
        // The structs must never move once initialised: the vector was made
        // with room for all of them and is never grown.
        assert!(self.0.len() < self.0.capacity(), "room reserved up front");
        // SAFETY: struct coroutine is plain C data; all zeroes is a valid
        // value (null pointers, no entry) that coroutine_init overwrites.
        self.0.push(unsafe { std::mem::zeroed() });
        let co = self.0.last_mut().expect("just pushed");
        co.entry = Some(c_body);
        // SAFETY: co is a live struct at its final address.
        if unsafe { sys::coroutine_init(co) } != 0 {
            self.0.pop();
            return Err(format!(
                "coroutine_init failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
    fn start(&mut self, i: usize) {
        // SAFETY: an initialised coroutine that has not run; it yields back
        // what it was given.
        let got = unsafe { sys::coroutine_yieldto(&mut self.0[i], i as *mut c_void) };
        assert_eq!(got as usize, i, "coroutine {i} yielded its input");
    }
    fn finish(&mut self) -> u64 {
        let mut sum = 0;
        for co in &mut self.0 {
            // SAFETY: a suspended coroutine, resumed once more to its end,
            // then released (its stack goes back to the pool).
            unsafe {
                sum += sys::coroutine_yieldto(co, 1 as *mut c_void) as u64;
                assert_eq!(sys::coroutine_release(co), 0);
            }
        }
        self.0 = Vec::new();
        sum
    }
}

struct Corosensei(Vec<corosensei::Coroutine<u64, (), u64, corosensei::stack::DefaultStack>>);

impl Subject for Corosensei {
    fn name(&self) -> &'static str {
        "corosensei"
    }
    fn make(&mut self, _: u64) -> Result<(), String> {
        let stack = corosensei::stack::DefaultStack::new(STACK)
            .map_err(|e| format!("stack allocation failed: {e}"))?;
        self.0.push(corosensei::Coroutine::with_stack(
            stack,
            |y: &corosensei::Yielder<u64, ()>, x: u64| x + y.suspend(()),
        ));
        Ok(())
    }
    fn start(&mut self, i: usize) {
        match self.0[i].resume(i as u64) {
            corosensei::CoroutineResult::Yield(()) => {}
            corosensei::CoroutineResult::Return(_) => unreachable!(),
        }
    }
    fn finish(&mut self) -> u64 {
        let sum = self
            .0
            .iter_mut()
            .map(|co| match co.resume(1) {
                corosensei::CoroutineResult::Return(v) => v,
                corosensei::CoroutineResult::Yield(()) => unreachable!(),
            })
            .sum();
        self.0 = Vec::new();
        sum
    }
}

/// Writes one byte at the top of a fresh stack's memory, as a coroutine's
/// first frame does.
///
/// # Safety
/// `stack` must be the start of a writable mapping of `STACK` bytes.
unsafe fn touch_top(stack: *mut c_void) {
    // SAFETY: the last byte of that mapping (the caller's promise).
    unsafe { stack.cast::<u8>().add(STACK - 1).write_volatile(1) };
}

/// The originals' way: one mapping per stack (no guard, as spice-gtk),
/// with its top page touched as their `coroutine_init` does.
struct MmapPerStack(Vec<*mut c_void>);

impl Subject for MmapPerStack {
    fn name(&self) -> &'static str {
        "mmap per stack"
    }
    fn make(&mut self, _: u64) -> Result<(), String> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected, and it is unmapped in finish.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: p is a fresh mapping of STACK bytes.
        unsafe { touch_top(p) };
        self.0.push(p);
        Ok(())
    }
    fn start(&mut self, _: usize) {}
    fn finish(&mut self) -> u64 {
        let n = self.0.len() as u64;
        for &p in &self.0 {
            // SAFETY: a mapping of STACK bytes made in make, unmapped once.
            unsafe { libc::munmap(p, STACK) };
        }
        self.0 = Vec::new();
        n * (n + 1) / 2
    }
}

/// The floor: strides of `STACK` bytes in one mapping made up front, and
/// only the top page of each touched. No library can hold a started
/// coroutine with a 16 MiB stack for less: one data page and one page-table
/// page, which the kernel must find and zero.
struct Floor {
    base: *mut c_void,
    count: usize,
    made: usize,
}

impl Floor {
    fn new(count: usize) -> Self {
        // SAFETY: a fresh private anonymous mapping (address space only,
        // MAP_NORESERVE), unmapped in Drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                count.max(1) * STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "reserve the floor's address space");
        Floor {
            base,
            count,
            made: 0,
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new, of this size.
        unsafe { libc::munmap(self.base, self.count.max(1) * STACK) };
    }
}

impl Subject for Floor {
    fn name(&self) -> &'static str {
        "first touch only (floor)"
    }
    fn make(&mut self, i: u64) -> Result<(), String> {
        assert!((i as usize) < self.count, "the floor was sized for the run");
        // SAFETY: stride i of the mapping made in new: STACK writable bytes.
        unsafe { touch_top(self.base.cast::<u8>().add(i as usize * STACK).cast()) };
        self.made += 1;
        Ok(())
    }
    fn start(&mut self, _: usize) {}
    fn finish(&mut self) -> u64 {
        let n = self.made as u64;
        // Give the pages back now, so that later subjects do not run short.
        // SAFETY: the mapping made in new; its contents are not needed.
        unsafe { libc::madvise(self.base, self.count.max(1) * STACK, libc::MADV_DONTNEED) };
        self.made = 0;
        n * (n + 1) / 2
    }
}

/// What one subject cost.
#[derive(Default)]
struct Report {
    library: &'static str,
    requested: usize,
    created: usize,
    make_ns: f64,
    start_ns: f64,
    resident: u64,
    page_tables: u64,
    /// Of `resident` and `page_tables`, what is still held once every
    /// coroutine has finished and been freed (in all, not per coroutine).
    resident_left: u64,
    page_tables_left: u64,
    resume_ns: f64,
    stopped_by: Option<String>,
}

impl Report {
    fn per(&self, total: f64) -> f64 {
        total / self.created.max(1) as f64
    }

    /// Create + first run, per coroutine.
    fn total_ns(&self) -> f64 {
        self.per(self.make_ns + self.start_ns)
    }

    fn print(&self) {
        let kib = |bytes: f64| bytes / 1024.0;
        let resident = self.per(self.resident as f64);
        let page_tables = self.per(self.page_tables as f64);
        println!("library:                {}", self.library);
        println!("requested:              {}", self.requested);
        println!("suspended at once:      {}", self.created);
        if let Some(why) = &self.stopped_by {
            println!("stopped early:          {why}");
        }
        println!(
            "create:                 {:.0} ns per coroutine",
            self.per(self.make_ns)
        );
        println!(
            "first run:              {:.0} ns per coroutine",
            self.per(self.start_ns)
        );
        println!(
            "create + first run:     {:.0} ns per coroutine",
            self.total_ns()
        );
        println!(
            "resident memory:        {resident:.0} bytes per coroutine ({:.2} KiB)",
            kib(resident)
        );
        println!(
            "page tables:            {page_tables:.0} bytes per coroutine ({:.2} KiB)",
            kib(page_tables)
        );
        println!(
            "resident + page tables: {:.2} KiB per coroutine",
            kib(resident + page_tables)
        );
        println!(
            "resume to completion:   {:.0} ns per coroutine",
            self.per(self.resume_ns)
        );
        println!(
            "left after all finish:  {:.2} MiB resident, {:.2} MiB page tables (in all)",
            self.resident_left as f64 / (1 << 20) as f64,
            self.page_tables_left as f64 / (1 << 20) as f64
        );
    }

    fn json(&self) -> String {
        format!(
            "{{\"library\":\"{}\",\"requested\":{},\"created\":{},\"make_ns\":{:.1},\
             \"start_ns\":{:.1},\"create_ns\":{:.1},\"resident_per\":{:.1},\
             \"page_tables_per\":{:.1},\"resume_ns\":{:.1},\"resident_left\":{},\
             \"page_tables_left\":{},\"stopped_by\":{}}}",
            self.library,
            self.requested,
            self.created,
            self.per(self.make_ns),
            self.per(self.start_ns),
            self.total_ns(),
            self.per(self.resident as f64),
            self.per(self.page_tables as f64),
            self.per(self.resume_ns),
            self.resident_left,
            self.page_tables_left,
            match &self.stopped_by {
                Some(s) => format!("\"{}\"", s.replace('"', "'")),
                None => "null".into(),
            }
        )
    }
}

/// Makes and starts `n` items of every subject, a chunk of each in turn,
/// keeps them all, then finishes each subject's items.
fn measure(subjects: &mut [Box<dyn Subject>], n: usize) -> Vec<Report> {
    let mut reports: Vec<Report> = subjects
        .iter()
        .map(|s| Report {
            library: s.name(),
            requested: n,
            ..Report::default()
        })
        .collect();
    for (round, first) in (0..n).step_by(CHUNK).enumerate() {
        let end = (first + CHUNK).min(n);
        for k in 0..subjects.len() {
            // Rotate who goes first, so no subject always follows another.
            let which = (round + k) % subjects.len();
            let (subject, report) = (&mut subjects[which], &mut reports[which]);
            if report.stopped_by.is_some() {
                continue;
            }
            let (rss0, pte0) = memory();
            let t = Instant::now();
            let mut made = first;
            while made < end {
                if let Err(why) = subject.make(made as u64) {
                    report.stopped_by = Some(why);
                    break;
                }
                made += 1;
            }
            report.make_ns += t.elapsed().as_nanos() as f64;
            let t = Instant::now();
            for i in first..made {
                subject.start(i);
            }
            report.start_ns += t.elapsed().as_nanos() as f64;
            let (rss1, pte1) = memory();
            report.created = made;
            report.resident += rss1.saturating_sub(rss0);
            report.page_tables += pte1.saturating_sub(pte0);
        }
    }
    for (subject, report) in subjects.iter_mut().zip(&mut reports) {
        let (rss0, pte0) = memory();
        let t = Instant::now();
        let sum = black_box(subject.finish());
        report.resume_ns = t.elapsed().as_nanos() as f64;
        // What finishing gave back, from what this subject grew by (other
        // subjects of the run still hold theirs).
        let (rss1, pte1) = memory();
        report.resident_left = report.resident.saturating_sub(rss0.saturating_sub(rss1));
        report.page_tables_left = report.page_tables.saturating_sub(pte0.saturating_sub(pte1));
        let created = report.created as u64;
        assert_eq!(
            sum,
            created * (created + 1) / 2,
            "{}: every coroutine returned its own result",
            report.library
        );
    }
    reports
}

fn subject(name: &str, n: usize) -> Box<dyn Subject> {
    match name {
        "ucoro" => Box::new(UcoroSafe(Vec::with_capacity(n))),
        "c" => Box::new(UcoroC(Vec::with_capacity(n))),
        "corosensei" => Box::new(Corosensei(Vec::with_capacity(n))),
        "mmap" => Box::new(MmapPerStack(Vec::with_capacity(n))),
        "floor" => Box::new(Floor::new(n)),
        other => panic!("--peer takes ucoro, c, corosensei, mmap or floor, not {other}"),
    }
}

fn main() {
    let mut n = None;
    let mut names = Vec::new();
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--peer" => names.push(args.next().expect("--peer takes a name")),
            "--compare" => names.extend(["ucoro", "c", "mmap", "floor"].map(String::from)),
            "--json" => json = Some(args.next().expect("--json takes a path")),
            count => n = Some(count.replace('_', "").parse().expect("a coroutine count")),
        }
    }
    if names.is_empty() {
        names.push("ucoro".into());
    }
    let compare = names.len() > 1;
    let n = n.unwrap_or(if compare { 250_000 } else { 1_000_000 });
    let mut subjects: Vec<_> = names.iter().map(|name| subject(name, n)).collect();
    let reports = measure(&mut subjects, n);
    for (k, report) in reports.iter().enumerate() {
        if k > 0 {
            println!();
        }
        report.print();
    }
    let mmap = reports.iter().find(|r| r.library == "mmap per stack");
    if let (true, Some(mmap)) = (compare, mmap) {
        println!("\nin this run, relative to one mmap per stack:");
        for r in &reports {
            println!(
                "  {:<26} create {:.3}x, create + first run {:.3}x",
                r.library,
                r.per(r.make_ns) / mmap.per(mmap.make_ns),
                r.total_ns() / mmap.total_ns()
            );
        }
    }
    if let Some(path) = json {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            fs::create_dir_all(dir).expect("create the JSON report's folder");
        }
        let body = if compare {
            let all: Vec<_> = reports.iter().map(Report::json).collect();
            format!(
                "{{\"compare\":true,\"count\":{n},\"libraries\":[{}]}}",
                all.join(",")
            )
        } else {
            reports[0].json()
        };
        fs::write(&path, body + "\n").expect("write the JSON report");
        println!("wrote {path}");
    }
}
