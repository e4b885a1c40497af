//! Fuzzes the C API with the operations of tests/model.rs: the input bytes
//! decode into an operation sequence, which runs against the C library and
//! against the model of SPEC §2, op by op. Any difference panics with the
//! same report the property test prints.
#![no_main]
#![warn(clippy::undocumented_unsafe_blocks)]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

// The one model and driver, shared with the property test.
#[path = "../../tests/model_driver/mod.rs"]
#[allow(dead_code)]
mod model_driver;

use model_driver::{Op, ReleaseCb, Setup, StackSel, Target};

/// Longer inputs are cut here: deep enough for any interleaving the model
/// knows, short enough to keep executions fast.
const MAX_OPS: usize = 100;

// Decoding types: the shapes of model_driver's ops, with `Arbitrary`.

#[derive(Arbitrary, Clone, Copy, Debug)]
enum FuzzOp {
    Create(FuzzSetup),
    Reinit(FuzzTarget, FuzzSetup),
    YieldTo(FuzzTarget, u8),
    Yield(u8),
    Return(u8),
    Release(FuzzTarget),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct FuzzSetup {
    stack: FuzzStack,
    release: FuzzRelease,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum FuzzStack {
    Default,
    Bytes(u16),
    Absurd,
    Huge,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum FuzzRelease {
    None,
    Free,
    Keep,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum FuzzTarget {
    Slot(u8),
    Live(u8),
    Newest,
    Main,
    Current,
    Null,
    Zeroed,
    Garbage,
}

impl From<FuzzSetup> for Setup {
    fn from(s: FuzzSetup) -> Self {
        Setup {
            stack: match s.stack {
                FuzzStack::Default => StackSel::Bytes(0),
                FuzzStack::Bytes(n) => StackSel::Bytes(u32::from(n)),
                FuzzStack::Absurd => StackSel::Absurd,
                FuzzStack::Huge => StackSel::Huge,
            },
            release: match s.release {
                FuzzRelease::None => ReleaseCb::None,
                FuzzRelease::Free => ReleaseCb::Free,
                FuzzRelease::Keep => ReleaseCb::Keep,
            },
        }
    }
}

impl From<FuzzTarget> for Target {
    fn from(t: FuzzTarget) -> Self {
        match t {
            FuzzTarget::Slot(n) => Target::Slot(n),
            FuzzTarget::Live(n) => Target::Live(n),
            FuzzTarget::Newest => Target::Newest,
            FuzzTarget::Main => Target::Main,
            FuzzTarget::Current => Target::Current,
            FuzzTarget::Null => Target::Null,
            FuzzTarget::Zeroed => Target::Zeroed,
            FuzzTarget::Garbage => Target::Garbage,
        }
    }
}

impl From<FuzzOp> for Op {
    fn from(op: FuzzOp) -> Self {
        match op {
            FuzzOp::Create(s) => Op::Create(s.into()),
            FuzzOp::Reinit(t, s) => Op::Reinit {
                slot: t.into(),
                setup: s.into(),
            },
            FuzzOp::YieldTo(t, value) => Op::YieldTo {
                to: t.into(),
                value,
            },
            FuzzOp::Yield(value) => Op::Yield { value },
            FuzzOp::Return(value) => Op::Return { value },
            FuzzOp::Release(t) => Op::Release { target: t.into() },
        }
    }
}

/// AddressSanitizer's defaults for this binary (`ASAN_OPTIONS` still wins):
/// no fake stacks for use-after-return detection. ASan gives every fiber
/// (coroutine stack) a fake stack of ~11 MiB and frees it only when the
/// fiber finishes; a coroutine released while suspended never finishes, so
/// with fake stacks on each such release leaks one and a run soon hits
/// libFuzzer's memory limit.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"detect_stack_use_after_return=0".as_ptr()
}

fuzz_target!(|input: Vec<FuzzOp>| {
    let ops: Vec<Op> = input.into_iter().take(MAX_OPS).map(Op::from).collect();
    if let Err(report) = model_driver::check(&ops) {
        panic!("{report}\nops: {ops:?}");
    }
});
