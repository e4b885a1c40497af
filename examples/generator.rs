//! A Python generator, written with ucoro in Rust:
//!
//! ```python
//! def coroutine():
//!     count = 0
//!     while True:
//!         yield count
//!         count += 1
//! ```
//!
//! Run with `cargo run --example generator`; prints `count:0` to `count:9`.

use ucoro::Generator;

fn main() {
    let mut counter = Generator::new(|y| {
        let mut count = 0;
        loop {
            y.suspend(count);
            count += 1;
        }
    });
    for _ in 0..10 {
        let count = counter.next().expect("an endless generator");
        println!("count:{count}");
    }
}
