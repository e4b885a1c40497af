//! The C API of the two extra copies of the C library that build.rs compiles
//! in the other switch modes when the `bench-modes` feature is on (it is, for
//! `cargo bench`), with every symbol renamed to `ucoro_<mode>_<name>`. Each
//! copy has its own per-thread state: a coroutine of one copy must only ever
//! be passed to the functions of that same copy.
//!
//! Benchmark tooling, declared here rather than in the library: the copies
//! are linked into the benchmark through the crate's static C library.

macro_rules! mode_api {
    ($(#[$attr:meta])* $module:ident, $prefix:literal) => {
        $(#[$attr])*
        pub mod $module {
            #![allow(dead_code)] // not every benchmark calls every function
            use std::os::raw::{c_int, c_void};

            use ucoro::sys::{continuation, coroutine, ucoro_diagnostic_fn};

            unsafe extern "C" {
                #[link_name = concat!($prefix, "coroutine_init")]
                pub fn coroutine_init(co: *mut coroutine) -> c_int;
                #[link_name = concat!($prefix, "coroutine_release")]
                pub fn coroutine_release(co: *mut coroutine) -> c_int;
                #[link_name = concat!($prefix, "coroutine_self")]
                pub fn coroutine_self() -> *mut coroutine;
                #[link_name = concat!($prefix, "coroutine_swap")]
                pub fn coroutine_swap(
                    from: *mut coroutine,
                    to: *mut coroutine,
                    arg: *mut c_void,
                ) -> *mut c_void;
                #[link_name = concat!($prefix, "coroutine_yieldto")]
                pub fn coroutine_yieldto(to: *mut coroutine, arg: *mut c_void) -> *mut c_void;
                #[link_name = concat!($prefix, "coroutine_yield")]
                pub fn coroutine_yield(arg: *mut c_void) -> *mut c_void;
                #[link_name = concat!($prefix, "coroutine_is_main")]
                pub fn coroutine_is_main(co: *mut coroutine) -> c_int;
                #[link_name = concat!($prefix, "cc_init")]
                pub fn cc_init(cc: *mut continuation) -> c_int;
                #[link_name = concat!($prefix, "cc_release")]
                pub fn cc_release(cc: *mut continuation) -> c_int;
                #[link_name = concat!($prefix, "cc_swap")]
                pub fn cc_swap(from: *mut continuation, to: *mut continuation) -> c_int;
                #[link_name = concat!($prefix, "ucoro_set_diagnostic_handler")]
                pub fn ucoro_set_diagnostic_handler(fn_: ucoro_diagnostic_fn, user_data: *mut c_void);
            }
        }
    };
}

mode_api!(
    /// The copy built with `-DUCORO_SWITCH_SETJMP` (the portable `_setjmp`
    /// path), symbols prefixed `ucoro_setjmp_`.
    setjmp,
    "ucoro_setjmp_"
);
mode_api!(
    /// The copy built with `-DUCORO_SWITCH_UCONTEXT` (strict: `swapcontext`
    /// on every switch), symbols prefixed `ucoro_ucontext_`.
    ucontext,
    "ucoro_ucontext_"
);
