//! One model of SPEC §2 and one driver for the C API, shared by the
//! property test (`tests/model.rs`, through `mod model_driver;`) and the
//! fuzz target (`fuzz/fuzz_targets/ops.rs`, through `#[path]`). This file is
//! not a test target of its own: Cargo only builds `tests/*.rs` and
//! `tests/*/main.rs`.
//!
//! How it works:
//!
//! - A test case is a list of [`Op`]s, each performed by whichever context
//!   (the thread's main one or a coroutine) is running when its turn comes.
//! - [`plan`] runs the ops through [`Model`], a small pure-Rust state machine
//!   of SPEC §2 (callers, exited/released flags, values in transit, what
//!   yieldto and release return, which diagnostic they report). It drops the
//!   ops that cannot be performed (a `yield` from main would abort the
//!   process, a `return` from main means nothing), resolves targets to slot
//!   numbers, and predicts one [`Obs`] per remaining op. Finally it appends
//!   `return`s until control is back in main.
//! - [`run_real`] performs the same plan against the C library. Every
//!   coroutine's entry is one generic `extern "C"` function that loops,
//!   taking the next op from a thread-local queue, so main and every
//!   coroutine interpret the same op stream; an op "inside" coroutine X is
//!   executed by X's entry loop. Whoever gets control after an op records
//!   what it observed (who it is, what `coroutine_self()` says, whether it
//!   runs on its own stack, how and with which value it was resumed, every
//!   slot's `exited`, the diagnostics and release callbacks seen meanwhile).
//! - Each observation is compared with the prediction as soon as it is made;
//!   on the first difference the driver stops executing (every coroutine on
//!   the chain returns), so a divergence cannot lead the driver into an
//!   operation the model never vetted (like a `yield` from main).
//! - [`check`] puts both together and returns a readable report on failure.
//!
//! Coroutines never panic (a panic cannot leave an `extern "C"` entry):
//! they only record; all assertions happen in main afterwards.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;
use std::ptr;
use std::sync::Once;

use ucoro::sys;

// The helpers the integration tests share. By path, so that the fuzz target,
// which includes this file by path too, finds them as well.
#[path = "../common/mod.rs"]
mod common;

use common::{current, errno, filled_co, is_main, page_size, Co};
pub use common::{DEFAULT_STACK, MIN_STACK};

/// The value a `release` callback in [`ReleaseCb::Keep`] mode returns.
pub const KEEP_RESULT: c_int = -2;
/// A stack size so large that rounding it up overflows: init fails, EINVAL.
pub const ABSURD_STACK: usize = usize::MAX;
/// A stack size no system can map: init fails, ENOMEM.
#[cfg(target_pointer_width = "64")]
pub const HUGE_STACK: usize = 1 << 62;
/// 32-bit: refused with EINVAL, not ENOMEM (see common::UNMAPPABLE).
#[cfg(not(target_pointer_width = "64"))]
pub const HUGE_STACK: usize = usize::MAX / 16 * 15;
/// The value that the `return`s appended to unwind the chain pass.
pub const UNWIND_VALUE: usize = 0xEE;

// ---------------------------------------------------------------------------
// Operations (what the generators produce)
// ---------------------------------------------------------------------------

/// One operation, performed by the running context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `coroutine_init` a new coroutine (in never-zeroed `malloc` memory).
    Create(Setup),
    /// `coroutine_init` again on an existing struct: planned if it was
    /// released, has exited with its stack freed, or failed its last init;
    /// or, without touching its fields, if it is on the chain of callers
    /// (main included), which init must refuse with EBUSY.
    Reinit { slot: Target, setup: Setup },
    /// `coroutine_yieldto(to, value)`.
    YieldTo { to: Target, value: u8 },
    /// `coroutine_yield(value)` (skipped from main: it aborts).
    Yield { value: u8 },
    /// The running coroutine's entry returns `value` (skipped in main).
    Return { value: u8 },
    /// `coroutine_release(target)`.
    Release { target: Target },
}

/// How a coroutine is set up before `coroutine_init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub stack: StackSel,
    pub release: ReleaseCb,
}

/// The requested `stack_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackSel {
    /// That many bytes (0: the default).
    Bytes(u32),
    /// [`ABSURD_STACK`]: init fails with EINVAL.
    Absurd,
    /// [`HUGE_STACK`]: init fails with ENOMEM.
    Huge,
}

/// The `release` callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseCb {
    /// `release = NULL`.
    None,
    /// A callback that records its call and returns 0 (the stack is freed).
    Free,
    /// A callback that records its call and returns [`KEEP_RESULT`] (the
    /// caller keeps the stack; nothing is freed).
    Keep,
}

/// Which coroutine an op names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Slot `n % slots` (slots are numbered in creation order); the op is
    /// skipped while there is none.
    Slot(u8),
    /// Slot `n % live` among the `live` slots that yieldto may enter now
    /// (initialised, not exited nor released, no caller, not running);
    /// skipped while there is none. Makes successful switches likely.
    Live(u8),
    /// The slot created last.
    Newest,
    /// The thread's main coroutine.
    Main,
    /// `coroutine_self()`.
    Current,
    /// NULL.
    Null,
    /// A struct of zeros never passed to init.
    Zeroed,
    /// A struct of 0xA5 bytes never passed to init.
    Garbage,
}

// ---------------------------------------------------------------------------
// Plans and observations (what the model predicts and the driver records)
// ---------------------------------------------------------------------------

/// A context: the thread's main coroutine or a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    Main,
    Co(usize),
    /// A pointer that is neither main nor any slot (only ever observed).
    Unknown(usize),
}

/// A target resolved by the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    Main,
    Co(usize),
    Null,
    Zeroed,
    Garbage,
}

/// An op as the driver executes it: targets resolved, values widened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exec {
    Create(Setup),
    Reinit {
        slot: usize,
        setup: Setup,
    },
    /// `coroutine_init` on a coroutine of the chain of callers, fields as
    /// they are.
    InitBusy {
        target: Resolved,
    },
    YieldTo {
        to: Resolved,
        value: usize,
    },
    Yield {
        value: usize,
    },
    Return {
        value: usize,
    },
    Release {
        target: Resolved,
    },
}

/// How the context that got control after an op got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Its entry started; the value is the entry's argument.
    Started,
    /// Its `coroutine_yield` returned the value.
    YieldReturned,
    /// Its `coroutine_yieldto` returned the value.
    YieldtoReturned,
    /// `coroutine_init` / `coroutine_release` returned the value.
    CallReturned,
    /// The driver refused to execute the op (a `yield` in what the library
    /// says is main, a `return` in main): only after a divergence.
    Refused,
}

/// A diagnostic: (function, condition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    pub function: String,
    pub condition: String,
}

impl Diag {
    fn new(function: &str, condition: &str) -> Self {
        Diag {
            function: function.to_owned(),
            condition: condition.to_owned(),
        }
    }
}

/// A call of a `release` callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The slot whose struct the callback got (None: not a slot).
    pub slot: Option<usize>,
    /// Its `exited` field at the time.
    pub exited: bool,
}

/// What the context that has control observes right after an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obs {
    /// Who has control: main or the slot whose entry loop this is.
    pub at: Ctx,
    /// What `coroutine_self()` returns there (`coroutine_is_main` agreeing).
    pub self_is: Ctx,
    /// Whether the context runs on its own stack (a coroutine: inside its
    /// slot's stack; main: outside every slot's stack).
    pub own_stack: bool,
    pub how: How,
    pub value: isize,
    /// errno, when the call returned -1 (else 0).
    pub errno: i32,
    /// The `stack_size` written back by a successful init.
    pub stack_size: Option<usize>,
    /// Every slot's `exited` field.
    pub exited: Vec<bool>,
    /// Diagnostics reported since the previous observation.
    pub diags: Vec<Diag>,
    /// Release callbacks run since the previous observation.
    pub callbacks: Vec<Callback>,
}

/// One op of a plan: who performs it, what, and what must follow.
#[derive(Clone, Debug)]
pub struct Step {
    /// Index in the generated op list (None: appended to unwind).
    pub op_index: Option<usize>,
    pub executor: Ctx,
    pub exec: Exec,
    pub expect: Obs,
}

/// Why the model did not plan an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `coroutine_yield` from a thread's main coroutine: "Co-routine is
    /// yielding to no one", then abort (tested in tests/c_semantics.rs).
    WouldAbort,
    /// A `return` in main: main has no entry to return from.
    NotInCoroutine,
    /// The op names a slot and there is none yet.
    NoSlot,
    /// Reinit of a struct that is neither on the chain of callers nor a
    /// released, exited-and-freed or failed one (it would leak a live stack;
    /// or it is a fixture, NULL).
    NotReinitialisable,
}

/// What [`plan`] makes of an op list.
#[derive(Clone, Debug)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub skipped: Vec<(usize, Op, Skip)>,
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// The model's view of one slot (one `struct coroutine`).
#[derive(Clone, Copy, Debug)]
struct MCo {
    /// The last init succeeded.
    init_ok: bool,
    /// The entry has been entered since that init.
    started: bool,
    /// The entry returned since that init (the `exited` field).
    exited: bool,
    /// `coroutine_release` succeeded since that init.
    released: bool,
    /// The library still holds a stack for it.
    has_stack: bool,
    /// The coroutine is running or waiting in yieldto for this one.
    caller: Option<Ctx>,
    release: ReleaseCb,
}

impl MCo {
    /// A coroutine as `coroutine_init` finds it: nothing of an earlier life
    /// counts (init never reads old state), only the release callback set.
    fn before_init(release: ReleaseCb) -> MCo {
        MCo {
            init_ok: false,
            started: false,
            exited: false,
            released: false,
            has_stack: false,
            caller: None,
            release,
        }
    }
}

/// SPEC §2 as a state machine over one thread's contexts.
#[derive(Clone, Debug)]
pub struct Model {
    page_size: usize,
    current: Ctx,
    cos: Vec<MCo>,
    /// Release callbacks the current op ran.
    callbacks: Vec<Callback>,
}

/// Init's outcome for a requested stack size: the size written back, or
/// errno. The size is the request's class (`ucoro_stack_size_for`): whole
/// pages, then a multiple of a quarter of its power of two.
pub fn init_result(requested: usize, page_size: usize) -> Result<usize, i32> {
    let want = if requested == 0 {
        DEFAULT_STACK
    } else {
        requested.max(MIN_STACK)
    };
    if want > usize::MAX / 2 {
        return Err(libc::EINVAL); // rounding up (plus a guard) would wrap
    }
    if want >= HUGE_STACK {
        return Err(libc::ENOMEM); // no address space is that large
    }
    let pages = want.div_ceil(page_size) * page_size;
    Ok(pages.next_multiple_of(1 << (pages.ilog2() - 2)))
}

impl StackSel {
    /// The `stack_size` field to set.
    pub fn bytes(self) -> usize {
        match self {
            StackSel::Bytes(n) => n as usize,
            StackSel::Absurd => ABSURD_STACK,
            StackSel::Huge => HUGE_STACK,
        }
    }
}

impl Model {
    pub fn new(page_size: usize) -> Self {
        Model {
            page_size,
            current: Ctx::Main,
            cos: Vec::new(),
            callbacks: Vec::new(),
        }
    }

    /// The running context.
    pub fn current(&self) -> Ctx {
        self.current
    }

    fn resolve(&self, t: Target) -> Option<Resolved> {
        let n = self.cos.len();
        Some(match t {
            Target::Slot(i) if n > 0 => Resolved::Co(usize::from(i) % n),
            Target::Slot(_) => return None,
            Target::Live(i) => {
                let live: Vec<usize> = (0..n).filter(|&j| self.enterable(j)).collect();
                if live.is_empty() {
                    return None;
                }
                Resolved::Co(live[usize::from(i) % live.len()])
            }
            Target::Newest => Resolved::Co(n.checked_sub(1)?),
            Target::Main => Resolved::Main,
            Target::Current => match self.current {
                Ctx::Co(i) => Resolved::Co(i),
                _ => Resolved::Main,
            },
            Target::Null => Resolved::Null,
            Target::Zeroed => Resolved::Zeroed,
            Target::Garbage => Resolved::Garbage,
        })
    }

    /// On this thread's chain of callers: running or waiting in yieldto.
    fn on_chain(&self, i: usize) -> bool {
        self.cos[i].caller.is_some() || self.current == Ctx::Co(i)
    }

    /// yieldto would switch into slot i.
    fn enterable(&self, i: usize) -> bool {
        let c = &self.cos[i];
        c.init_ok && !c.exited && !c.released && !self.on_chain(i)
    }

    /// What the running context observes now.
    fn obs(&mut self, how: How, value: isize) -> Obs {
        Obs {
            at: self.current,
            self_is: self.current,
            own_stack: true,
            how,
            value,
            errno: 0,
            stack_size: None,
            exited: self.cos.iter().map(|c| c.exited).collect(),
            diags: Vec::new(),
            callbacks: std::mem::take(&mut self.callbacks),
        }
    }

    /// A call that returned without switching, with a diagnostic.
    fn refused(&mut self, how: How, value: isize, errno: i32, function: &str, cond: &str) -> Obs {
        let mut o = self.obs(how, value);
        o.errno = errno;
        o.diags.push(Diag::new(function, cond));
        o
    }

    /// Runs `co`'s release callback, if any, the way the library does before
    /// freeing its stack; returns the callback's result.
    fn run_release(&mut self, i: usize) -> c_int {
        let c = self.cos[i];
        let ret = match c.release {
            ReleaseCb::None => return 0,
            ReleaseCb::Free => 0,
            ReleaseCb::Keep => KEEP_RESULT,
        };
        self.callbacks.push(Callback {
            slot: Some(i),
            exited: c.exited,
        });
        ret
    }

    fn init(&mut self, slot: usize, setup: Setup) -> Obs {
        let c = &mut self.cos[slot];
        *c = MCo::before_init(setup.release);
        match init_result(setup.stack.bytes(), self.page_size) {
            Ok(size) => {
                c.init_ok = true;
                c.has_stack = true;
                let mut o = self.obs(How::CallReturned, 0);
                o.stack_size = Some(size);
                o
            }
            Err(errno) => {
                let mut o = self.obs(How::CallReturned, -1);
                o.errno = errno;
                o
            }
        }
    }

    /// Plans `op` from the current state: what the driver executes and what
    /// it must observe next; or why `op` is not executed.
    pub fn step(&mut self, op: Op) -> Result<(Exec, Obs), Skip> {
        match op {
            Op::Create(setup) => {
                let slot = self.cos.len();
                self.cos.push(MCo::before_init(setup.release));
                Ok((Exec::Create(setup), self.init(slot, setup)))
            }
            Op::Reinit { slot, setup } => {
                const F: &str = "coroutine_init";
                let target = self.resolve(slot).ok_or(Skip::NoSlot)?;
                let how = How::CallReturned;
                let busy = Exec::InitBusy { target };
                match target {
                    Resolved::Main => Ok((
                        busy,
                        self.refused(how, -1, libc::EBUSY, F, "!coroutine_is_main(co)"),
                    )),
                    Resolved::Co(i) if self.on_chain(i) => {
                        Ok((busy, self.refused(how, -1, libc::EBUSY, F, "!co->caller")))
                    }
                    Resolved::Co(i) => {
                        let c = self.cos[i];
                        let reusable = c.released || !c.init_ok || (c.exited && !c.has_stack);
                        if !reusable {
                            return Err(Skip::NotReinitialisable);
                        }
                        Ok((Exec::Reinit { slot: i, setup }, self.init(i, setup)))
                    }
                    _ => Err(Skip::NotReinitialisable),
                }
            }
            Op::YieldTo { to, value } => {
                let to = self.resolve(to).ok_or(Skip::NoSlot)?;
                let value = usize::from(value);
                let exec = Exec::YieldTo { to, value };
                Ok((exec, self.yieldto(to, value)))
            }
            Op::Yield { value } => {
                let Ctx::Co(i) = self.current else {
                    return Err(Skip::WouldAbort);
                };
                let value = usize::from(value);
                let back = self.cos[i]
                    .caller
                    .take()
                    .expect("a running coroutine has a caller");
                self.current = back;
                Ok((
                    Exec::Yield { value },
                    self.obs(How::YieldtoReturned, value as isize),
                ))
            }
            Op::Return { value } => {
                let Ctx::Co(_) = self.current else {
                    return Err(Skip::NotInCoroutine);
                };
                let value = usize::from(value);
                Ok((Exec::Return { value }, self.exit(value)))
            }
            Op::Release { target } => {
                let target = self.resolve(target).ok_or(Skip::NoSlot)?;
                Ok((Exec::Release { target }, self.release(target)))
            }
        }
    }

    fn yieldto(&mut self, to: Resolved, value: usize) -> Obs {
        const F: &str = "coroutine_yieldto";
        let how = How::YieldtoReturned;
        let i = match to {
            Resolved::Null => return self.refused(how, 0, 0, F, "to != NULL"),
            Resolved::Zeroed | Resolved::Garbage => {
                return self.refused(how, 0, 0, F, "to is initialised")
            }
            // Main is always on its thread's chain of callers.
            Resolved::Main => return self.refused(how, 0, 0, F, "!to->caller"),
            Resolved::Co(i) => i,
        };
        let c = self.cos[i];
        if !c.init_ok {
            return self.refused(how, 0, 0, F, "to is initialised");
        }
        if c.exited {
            return self.refused(how, 0, 0, F, "!to->exited");
        }
        if c.released {
            return self.refused(how, 0, 0, F, "to is initialised");
        }
        if self.on_chain(i) {
            return self.refused(how, 0, 0, F, "!to->caller");
        }
        self.cos[i].caller = Some(self.current);
        self.current = Ctx::Co(i);
        let how = if c.started {
            How::YieldReturned
        } else {
            self.cos[i].started = true;
            How::Started
        };
        self.obs(how, value as isize)
    }

    /// The running coroutine's entry returns `value`.
    fn exit(&mut self, value: usize) -> Obs {
        let Ctx::Co(i) = self.current else {
            unreachable!("only a coroutine exits")
        };
        self.cos[i].exited = true;
        let back = self.cos[i]
            .caller
            .take()
            .expect("a running coroutine has a caller");
        self.current = back;
        // The stack is freed (or kept by a negative release callback) on the
        // way back to the caller, exited already 1.
        if self.run_release(i) >= 0 {
            self.cos[i].has_stack = false;
        }
        self.obs(How::YieldtoReturned, value as isize)
    }

    fn release(&mut self, target: Resolved) -> Obs {
        const F: &str = "coroutine_release";
        let how = How::CallReturned;
        let i = match target {
            Resolved::Null => return self.refused(how, -1, libc::EINVAL, F, "co != NULL"),
            Resolved::Main => {
                return self.refused(how, -1, libc::EBUSY, F, "!coroutine_is_main(co)")
            }
            Resolved::Zeroed | Resolved::Garbage => {
                return self.refused(how, -1, libc::EINVAL, F, "co is initialised")
            }
            Resolved::Co(i) => i,
        };
        let c = self.cos[i];
        if !c.init_ok {
            return self.refused(how, -1, libc::EINVAL, F, "co is initialised");
        }
        if c.released {
            return self.obs(how, 0);
        }
        if self.on_chain(i) {
            return self.refused(how, -1, libc::EBUSY, F, "!co->caller");
        }
        if c.has_stack {
            let ret = self.run_release(i);
            if ret < 0 {
                return self.obs(how, ret as isize);
            }
        }
        let c = &mut self.cos[i];
        c.has_stack = false;
        c.released = true;
        self.obs(how, 0)
    }
}

/// Plans `ops`: the model's prediction, op by op, then `return`s until main
/// runs again.
pub fn plan(ops: &[Op], page_size: usize) -> Plan {
    let mut model = Model::new(page_size);
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    let mut push = |model: &mut Model, op_index: Option<usize>, op: Op| {
        let executor = model.current();
        match model.step(op) {
            Ok((exec, expect)) => steps.push(Step {
                op_index,
                executor,
                exec,
                expect,
            }),
            Err(why) => skipped.push((op_index.unwrap_or(usize::MAX), op, why)),
        }
    };
    for (k, &op) in ops.iter().enumerate() {
        push(&mut model, Some(k), op);
    }
    while model.current() != Ctx::Main {
        let op = Op::Return {
            value: UNWIND_VALUE as u8,
        };
        push(&mut model, None, op);
    }
    Plan { steps, skipped }
}

// ---------------------------------------------------------------------------
// The driver: the same plan against the C library
// ---------------------------------------------------------------------------

/// The thread's run in progress.
struct Driver {
    main: Co,
    slots: Vec<Co>,
    zeroed: Co,
    garbage: Co,
    steps: Vec<(Exec, Obs)>,
    /// The next step to hand out.
    next: usize,
    actual: Vec<Obs>,
    /// Set on the first observation that differs: nothing more executes.
    stopped: bool,
}

thread_local! {
    static DRIVER: RefCell<Option<Driver>> = const { RefCell::new(None) };
    static DIAGS: RefCell<Vec<Diag>> = const { RefCell::new(Vec::new()) };
    static CALLBACKS: RefCell<Vec<Callback>> = const { RefCell::new(Vec::new()) };
}

/// The process-wide diagnostic handler: appends to the calling thread's log.
unsafe extern "C" fn on_diagnostic(
    function: *const c_char,
    condition: *const c_char,
    _user_data: *mut c_void,
) {
    let text = |p: *const c_char| {
        if p.is_null() {
            "<NULL>".to_owned()
        } else {
            // SAFETY: the library passes NUL-terminated string literals.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let diag = Diag {
        function: text(function),
        condition: text(condition),
    };
    // try_*: never panic in a callback from C.
    let _ = DIAGS.try_with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            d.push(diag);
        }
    });
}

/// Installs [`on_diagnostic`] once for the whole process.
pub fn install_diagnostic_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handler is a valid function for the life of the
        // process and ignores its (NULL) user data.
        unsafe { sys::ucoro_set_diagnostic_handler(Some(on_diagnostic), ptr::null_mut()) };
    });
}

/// Records a call of a release callback.
fn note_release(co: Co) {
    // SAFETY: the library passes the struct being released, one of our
    // slots: malloc'd memory that stays allocated for the whole run.
    let exited = unsafe { (*co).exited } != 0;
    let slot = DRIVER.try_with(|d| {
        d.try_borrow()
            .ok()
            .and_then(|d| d.as_ref()?.slots.iter().position(|&s| s == co))
    });
    let cb = Callback {
        slot: slot.ok().flatten(),
        exited,
    };
    let _ = CALLBACKS.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.push(cb);
        }
    });
}

unsafe extern "C" fn release_free(co: Co) -> c_int {
    note_release(co);
    0
}

unsafe extern "C" fn release_keep(co: Co) -> c_int {
    note_release(co);
    KEEP_RESULT
}

/// Whether the `size_of::<coroutine>()` bytes at `co` all equal `byte`.
fn all_bytes(co: Co, byte: u8) -> bool {
    let size = std::mem::size_of::<sys::coroutine>();
    // SAFETY: co is one of our fixtures: `size` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(co.cast::<u8>(), size) };
    bytes.iter().all(|&b| b == byte)
}

fn with_driver<R>(f: impl FnOnce(&mut Driver) -> R) -> Option<R> {
    DRIVER
        .try_with(|d| d.try_borrow_mut().ok()?.as_mut().map(f))
        .ok()
        .flatten()
}

/// The next op for the running context, or None when the plan is done or
/// the run stopped.
fn next_exec() -> Option<Exec> {
    with_driver(|d| {
        if d.stopped || d.next >= d.steps.len() {
            return None;
        }
        d.next += 1;
        Some(d.steps[d.next - 1].0)
    })
    .flatten()
}

/// The pointer the driver passes for a resolved target.
fn pointer(to: Resolved) -> Co {
    with_driver(|d| match to {
        Resolved::Main => d.main,
        Resolved::Co(i) => d.slots.get(i).copied().unwrap_or(ptr::null_mut()),
        Resolved::Null => ptr::null_mut(),
        Resolved::Zeroed => d.zeroed,
        Resolved::Garbage => d.garbage,
    })
    .unwrap_or(ptr::null_mut())
}

/// Which context `co` is.
fn identify(d: &Driver, co: Co) -> Ctx {
    if co == d.main && is_main(co) {
        return Ctx::Main;
    }
    match d.slots.iter().position(|&s| s == co) {
        Some(i) if !is_main(co) => Ctx::Co(i),
        _ => Ctx::Unknown(co as usize),
    }
}

/// Whether `addr` lies in the stack the library gave slot `co`.
fn in_stack_of(co: Co, addr: usize) -> bool {
    // SAFETY: slots stay allocated for the whole run; `cc` is the public
    // continuation (continuation.h), whose `stack` and `stack_size` describe
    // the coroutine's stack while it has one.
    let (base, size) = unsafe { ((*co).cc.stack as usize, (*co).cc.stack_size) };
    base != 0 && addr >= base && addr - base < size
}

/// The stack pointer: where the running context's frames are. (The address
/// of a local would not do: under AddressSanitizer, locals may live on a
/// "fake stack" on the heap.)
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads the stack pointer into a register; no memory access.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads the stack pointer into a register; no memory access.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let marker = 0u8;
        sp = std::hint::black_box(&marker) as *const u8 as usize;
    }
    sp
}

/// The running context `me` records what it sees after an op, and compares
/// it with the prediction.
#[inline(never)]
fn observe(me: Ctx, how: How, value: isize, errno: i32, stack_size: Option<usize>) {
    let here = stack_pointer();
    let self_ptr = current();
    let diags = DIAGS.try_with(|d| d.take()).unwrap_or_default();
    let callbacks = CALLBACKS.try_with(|c| c.take()).unwrap_or_default();
    with_driver(|d| {
        if d.stopped {
            return;
        }
        let own_stack = match me {
            Ctx::Main => !d.slots.iter().any(|&s| in_stack_of(s, here)),
            Ctx::Co(i) => d.slots.get(i).is_some_and(|&s| in_stack_of(s, here)),
            Ctx::Unknown(_) => false,
        };
        let obs = Obs {
            at: me,
            self_is: identify(d, self_ptr),
            own_stack,
            how,
            value,
            errno,
            stack_size,
            // SAFETY: slots stay allocated for the whole run.
            exited: d
                .slots
                .iter()
                .map(|&s| unsafe { (*s).exited } != 0)
                .collect(),
            diags,
            callbacks,
        };
        let k = d.actual.len();
        match d.steps.get(k) {
            Some((_, expect)) if *expect == obs => {}
            _ => d.stopped = true,
        }
        d.actual.push(obs);
    });
}

/// Sets the "in" fields of `co` and calls `coroutine_init`; records.
fn do_init(me: Ctx, co: Co, setup: Setup) {
    let release: Option<unsafe extern "C" fn(Co) -> c_int> = match setup.release {
        ReleaseCb::None => None,
        ReleaseCb::Free => Some(release_free),
        ReleaseCb::Keep => Some(release_keep),
    };
    // SAFETY: co is one of our malloc'd slots, not running nor waiting (the
    // model only plans inits of fresh, released, exited-and-freed or failed
    // structs).
    let (ret, size) = unsafe {
        (*co).stack_size = setup.stack.bytes();
        (*co).entry = Some(entry);
        (*co).release = release;
        let ret = sys::coroutine_init(co);
        (ret, (*co).stack_size)
    };
    let err = if ret == -1 { errno() } else { 0 };
    let size = (ret == 0).then_some(size);
    observe(me, How::CallReturned, ret as isize, err, size);
}

/// Interprets ops as context `me` until its entry must return (Some(value))
/// or there is nothing more to do (None).
fn run(me: Ctx) -> Option<usize> {
    loop {
        match next_exec()? {
            Exec::Create(setup) => {
                let co = filled_co(0xA5);
                with_driver(|d| d.slots.push(co));
                do_init(me, co, setup);
            }
            Exec::Reinit { slot, setup } => {
                let co = pointer(Resolved::Co(slot));
                if co.is_null() {
                    observe(me, How::Refused, 0, 0, None);
                } else {
                    do_init(me, co, setup);
                }
            }
            Exec::InitBusy { target } => {
                let co = pointer(target);
                // SAFETY: co is main or a slot on the chain of callers:
                // initialised memory that init only reads before refusing.
                let ret = unsafe { sys::coroutine_init(co) };
                let err = if ret == -1 { errno() } else { 0 };
                observe(me, How::CallReturned, ret as isize, err, None);
            }
            Exec::YieldTo { to, value } => {
                let to = pointer(to);
                // SAFETY: to is NULL, a fixture, main or a slot: memory of a
                // `struct coroutine` that stays allocated for the whole run,
                // which yieldto checks before switching.
                let r = unsafe { sys::coroutine_yieldto(to, value as *mut c_void) };
                observe(me, How::YieldtoReturned, r as isize, 0, None);
            }
            Exec::Yield { value } => {
                if is_main(current()) {
                    // Would abort: only reachable after a divergence.
                    observe(me, How::Refused, 0, 0, None);
                } else {
                    // SAFETY: not in main, so the running coroutine has a
                    // caller to return to (as the model checked).
                    let r = unsafe { sys::coroutine_yield(value as *mut c_void) };
                    observe(me, How::YieldReturned, r as isize, 0, None);
                }
            }
            Exec::Return { value } => {
                if me == Ctx::Main {
                    observe(me, How::Refused, 0, 0, None);
                } else {
                    return Some(value);
                }
            }
            Exec::Release { target } => {
                let co = pointer(target);
                // SAFETY: as for yieldto: the library checks that co is
                // initialised and neither running nor waiting.
                let ret = unsafe { sys::coroutine_release(co) };
                let err = if ret == -1 { errno() } else { 0 };
                observe(me, How::CallReturned, ret as isize, err, None);
            }
        }
    }
}

/// Every coroutine's entry: identifies itself, records its start, then
/// interprets ops until told to return. After a divergence it returns at
/// once, so that control unwinds to main.
unsafe extern "C" fn entry(arg: *mut c_void) -> *mut c_void {
    let self_ptr = current();
    let me = with_driver(|d| identify(d, self_ptr)).unwrap_or(Ctx::Unknown(self_ptr as usize));
    observe(me, How::Started, arg as isize, 0, None);
    run(me).unwrap_or(UNWIND_VALUE) as *mut c_void
}

/// What running a plan against the C library produced.
#[derive(Debug)]
pub struct RealRun {
    pub actual: Vec<Obs>,
    /// Main was running again at the end (`coroutine_self()` is main).
    pub ended_in_main: bool,
    /// The zeroed and garbage fixtures are byte for byte unchanged.
    pub fixtures_intact: bool,
    /// Slots left allocated because the library still had them on a chain
    /// (only after a divergence).
    pub leaked: usize,
}

/// Runs `plan` against the C library on this thread, then releases and
/// frees everything it made.
pub fn run_real(plan: &Plan) -> RealRun {
    install_diagnostic_handler();
    let main = current();
    // SAFETY: calloc has no preconditions; the result is checked.
    let zeroed: Co = unsafe { libc::calloc(1, std::mem::size_of::<sys::coroutine>()) }.cast();
    assert!(!zeroed.is_null(), "calloc failed");
    let garbage = filled_co(0xA5);
    DIAGS.with(|d| d.borrow_mut().clear());
    CALLBACKS.with(|c| c.borrow_mut().clear());
    DRIVER.with(|d| {
        *d.borrow_mut() = Some(Driver {
            main,
            slots: Vec::new(),
            zeroed,
            garbage,
            steps: plan
                .steps
                .iter()
                .map(|s| (s.exec, s.expect.clone()))
                .collect(),
            next: 0,
            actual: Vec::new(),
            stopped: false,
        })
    });

    run(Ctx::Main);

    let ended_in_main = current() == main;
    let driver = DRIVER
        .with(|d| d.borrow_mut().take())
        .expect("the driver is still installed");
    let mut leaked = 0;
    for &co in &driver.slots {
        // SAFETY: co is one of our malloc'd slots. If the library still has
        // it on a chain (only after a divergence), it is left alone: its
        // stack may still be in use. Otherwise it is released without
        // callback (a Keep callback would refuse forever) and freed.
        unsafe {
            if !ended_in_main || !(*co).caller.is_null() || co == current() {
                leaked += 1;
                continue;
            }
            (*co).release = None;
            let ret = sys::coroutine_release(co);
            // -1 with EINVAL: a failed init; it holds nothing.
            if ret == 0 || (ret == -1 && errno() == libc::EINVAL) {
                libc::free(co.cast());
            } else {
                leaked += 1;
            }
        }
    }
    let fixtures_intact = all_bytes(zeroed, 0) && all_bytes(garbage, 0xA5);
    // SAFETY: the fixtures are our own allocations and no longer used.
    unsafe {
        libc::free(zeroed.cast());
        libc::free(garbage.cast());
    }
    DIAGS.with(|d| d.borrow_mut().clear());
    CALLBACKS.with(|c| c.borrow_mut().clear());
    RealRun {
        actual: driver.actual,
        ended_in_main,
        fixtures_intact,
        leaked,
    }
}

// ---------------------------------------------------------------------------
// Model against the real thing
// ---------------------------------------------------------------------------

/// Runs `ops` through the model and against the C library; Err(report) on
/// the first difference.
pub fn check(ops: &[Op]) -> Result<(), String> {
    let plan = plan(ops, page_size());
    let real = run_real(&plan);
    let first_diff = plan
        .steps
        .iter()
        .zip(&real.actual)
        .position(|(s, a)| s.expect != *a);
    let length_ok = real.actual.len() == plan.steps.len();
    if first_diff.is_none()
        && length_ok
        && real.ended_in_main
        && real.fixtures_intact
        && real.leaked == 0
    {
        return Ok(());
    }
    Err(report(&plan, &real, first_diff))
}

fn report(plan: &Plan, real: &RealRun, first_diff: Option<usize>) -> String {
    use std::fmt::Write;
    let mut s = String::from("the C library and the model of SPEC §2 disagree\n");
    let upto = first_diff.unwrap_or(plan.steps.len());
    for (k, step) in plan.steps.iter().enumerate().take(upto + 1) {
        let origin = match step.op_index {
            Some(i) => format!("op {i}"),
            None => "unwind".to_owned(),
        };
        let _ = writeln!(s, "#{k} ({origin}) in {}: {}", step.executor, step.exec);
        let _ = writeln!(s, "    expected: {}", step.expect);
        match real.actual.get(k) {
            Some(a) if *a == step.expect => {}
            Some(a) => {
                let _ = writeln!(s, "    actual:   {a}");
                let _ = writeln!(s, "    ^^^ first difference");
            }
            None => {
                let _ = writeln!(s, "    actual:   (not reached)");
            }
        }
    }
    if first_diff.is_none() && real.actual.len() != plan.steps.len() {
        let _ = writeln!(
            s,
            "{} observations for {} planned steps",
            real.actual.len(),
            plan.steps.len()
        );
        for extra in real.actual.iter().skip(plan.steps.len()) {
            let _ = writeln!(s, "    extra:    {extra}");
        }
    }
    if !real.ended_in_main {
        let _ = writeln!(s, "control did not end in main");
    }
    if !real.fixtures_intact {
        let _ = writeln!(s, "a rejected never-initialised struct was written to");
    }
    if real.leaked != 0 {
        let _ = writeln!(s, "{} slot(s) could not be released", real.leaked);
    }
    if !plan.skipped.is_empty() {
        let _ = writeln!(s, "skipped ops: {:?}", plan.skipped);
    }
    s
}

impl fmt::Display for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ctx::Main => write!(f, "main"),
            Ctx::Co(i) => write!(f, "co{i}"),
            Ctx::Unknown(p) => write!(f, "unknown {p:#x}"),
        }
    }
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolved::Main => write!(f, "main"),
            Resolved::Co(i) => write!(f, "co{i}"),
            Resolved::Null => write!(f, "NULL"),
            Resolved::Zeroed => write!(f, "zeroed struct"),
            Resolved::Garbage => write!(f, "garbage struct"),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack_size {}", self.stack.bytes())?;
        match self.release {
            ReleaseCb::None => Ok(()),
            ReleaseCb::Free => write!(f, ", release returns 0"),
            ReleaseCb::Keep => write!(f, ", release returns {KEEP_RESULT}"),
        }
    }
}

impl fmt::Display for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exec::Create(setup) => write!(f, "create ({setup})"),
            Exec::Reinit { slot, setup } => write!(f, "init co{slot} again ({setup})"),
            Exec::InitBusy { target } => write!(f, "coroutine_init({target}) as it is"),
            Exec::YieldTo { to, value } => write!(f, "coroutine_yieldto({to}, {value})"),
            Exec::Yield { value } => write!(f, "coroutine_yield({value})"),
            Exec::Return { value } => write!(f, "entry returns {value}"),
            Exec::Release { target } => write!(f, "coroutine_release({target})"),
        }
    }
}

impl fmt::Display for Obs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.at)?;
        if self.self_is != self.at {
            write!(f, " (coroutine_self() is {})", self.self_is)?;
        }
        if !self.own_stack {
            write!(f, " (NOT on its own stack)")?;
        }
        match self.how {
            How::Started => write!(f, " starts with {}", self.value)?,
            How::YieldReturned => write!(f, ": yield returns {}", self.value)?,
            How::YieldtoReturned => write!(f, ": yieldto returns {}", self.value)?,
            How::CallReturned => write!(f, ": call returns {}", self.value)?,
            How::Refused => write!(f, ": driver refused the op")?,
        }
        if self.errno != 0 {
            write!(f, " errno {}", self.errno)?;
        }
        if let Some(size) = self.stack_size {
            write!(f, " stack_size {size}")?;
        }
        let exited: Vec<String> = self
            .exited
            .iter()
            .enumerate()
            .filter(|(_, &e)| e)
            .map(|(i, _)| format!("co{i}"))
            .collect();
        if !exited.is_empty() {
            write!(f, "; exited: {}", exited.join(" "))?;
        }
        for d in &self.diags {
            write!(f, "; diag {}: '{}'", d.function, d.condition)?;
        }
        for c in &self.callbacks {
            match c.slot {
                Some(i) => write!(f, "; release(co{i}) exited={}", c.exited)?,
                None => write!(f, "; release(unknown) exited={}", c.exited)?,
            }
        }
        Ok(())
    }
}
