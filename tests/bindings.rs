//! The committed raw bindings (`src/sys/bindings.rs`) must be what bindgen
//! generates from `csrc/include/ucoro/coroutine.h` today. Runs only with the `bindgen`
//! feature (needs libclang): `cargo test --features bindgen --test bindings`.
//! To update the committed file after a header change, run it with
//! `UCORO_BLESS=1`.
#![cfg(feature = "bindgen")]

#[test]
fn committed_bindings_match_the_header() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sys/bindings.rs");
    if std::env::var_os("UCORO_BLESS").is_some() {
        std::fs::write(path, fresh).expect("write src/sys/bindings.rs");
        return;
    }
    let committed = std::fs::read_to_string(path).expect("read src/sys/bindings.rs");
    assert!(
        committed == fresh,
        "src/sys/bindings.rs is out of date with csrc/include/ucoro/coroutine.h; \
         regenerate with: UCORO_BLESS=1 cargo test --features bindgen --test bindings"
    );
}
