//! The README's "Rust API at a glance", as a program: `cargo run --example
//! tour`. tests/readme.rs checks that the README shows this file's code.

use ucoro::{Builder, CoroutineResult, Generator};

fn main() -> Result<(), ucoro::Error> {
    let evens: Vec<u32> = Generator::new(|y| (0..5).for_each(|i| y.suspend(i * 2))).collect();
    assert_eq!(evens, [0, 2, 4, 6, 8]);

    let mut co = Builder::new().stack_size(256 << 10).build(|y, a: i32| {
        let b = y.suspend(a + 1); // hands a + 1 to resume, gets the next input
        a * b
    })?;
    assert_eq!(co.resume(4)?, CoroutineResult::Yield(5));
    assert_eq!(co.resume(3)?, CoroutineResult::Return(12));

    // Coroutines that borrow: `scope` ends (unwinds) every coroutine it made
    // before it returns, even one whose handle was forgotten.
    let words = ["a", "bb", "ccc"];
    let mut lengths = Vec::new();
    ucoro::scope(|s| {
        let gen = s.generator(|y| words.iter().for_each(|w| y.suspend(*w)));
        let mut sink = s.coroutine(|y, mut w: &str| loop {
            lengths.push(w.len());
            w = y.suspend(());
        });
        for w in gen {
            sink.resume(w).unwrap();
        }
    });
    assert_eq!(lengths, [1, 2, 3]);

    // Deep recursion on a fresh 256 MiB stack, guarded; only the pages it
    // touches cost memory.
    fn depth(n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            1 + depth(n - 1)
        }
    }
    assert_eq!(ucoro::on_stack(256 << 20, || depth(1_000_000)), 1_000_000);

    // A future whose synchronous body awaits other futures on its own stack.
    let fiber = ucoro::Fiber::new(|a: &ucoro::Awaiter| {
        let x = a.block_on(async { 20 }); // suspends the fiber while pending
        x + a.block_on(async { 22 })
    });
    assert_eq!(futures_executor::block_on(fiber), 42); // or any local executor
    Ok(())
}
