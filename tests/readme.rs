//! The README's Rust tour is `examples/tour.rs` (which `cargo test` builds
//! and CI runs): this checks that the README shows that file's code as it
//! is, so the snippet a reader copies compiles and does what it says.

const README: &str = include_str!("../README.md");
const TOUR: &str = include_str!("../examples/tour.rs");

#[test]
fn readme_rust_tour_is_examples_tour() {
    let code = &TOUR[TOUR
        .find("use ucoro")
        .expect("the tour starts with `use ucoro`")..];
    let section = &README[README
        .find("## The Rust API at a glance")
        .expect("the README has the Rust section")..];
    let start = section
        .find("```rust\n")
        .expect("the section has a Rust block")
        + 8;
    let end = start + section[start..].find("```").expect("the block ends");
    assert_eq!(
        &section[start..end],
        code,
        "README's Rust block differs from examples/tour.rs: copy the file's code into it"
    );
}
