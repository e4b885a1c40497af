//! The producer/consumer model with coroutines: one thread, no locks,
//! no queue protection. The producer makes a batch of items and yields to
//! the consumer; the consumer takes them and resumes the producer.
//!
//! Run with `cargo run --example producer_consumer`.

use std::collections::VecDeque;

use ucoro::{Coroutine, CoroutineResult};

const BATCHES: u32 = 5;
const BATCH_SIZE: u32 = 3;

fn main() {
    // The producer owns the queue while it runs and hands it over on each
    // suspend; the consumer hands it back on each resume. Whoever holds the
    // queue is the only one running, so nothing needs a lock.
    let mut producer = Coroutine::new(|yielder, mut queue: VecDeque<u32>| {
        let mut next_item = 1;
        for batch in 1..=BATCHES {
            for _ in 0..BATCH_SIZE {
                println!("producer: made item {next_item}");
                queue.push_back(next_item);
                next_item += 1;
            }
            println!("producer: batch {batch} ready, yielding to consumer");
            queue = yielder.suspend(queue);
        }
        println!("producer: done");
        next_item - 1
    });

    let mut queue = VecDeque::new();
    let mut consumed = 0u32;
    let mut sum = 0u32;
    let produced = loop {
        match producer.resume(queue).expect("producer is alive") {
            CoroutineResult::Yield(mut batch) => {
                while let Some(item) = batch.pop_front() {
                    println!("consumer: took item {item}");
                    consumed += 1;
                    sum += item;
                }
                println!("consumer: queue empty, yielding to producer");
                queue = batch;
            }
            CoroutineResult::Return(total) => break total,
        }
    };
    println!("summary: produced {produced} items, consumed {consumed}, sum {sum}, in one thread without locks");
}
