//! Compiles the C library in `csrc/` (the same source list the Makefile
//! uses) and, with the `bindgen` feature, regenerates the raw bindings from
//! `csrc/coroutine.h`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Reads `UCORO_SOURCES = a.c b.c ...` from `csrc/sources.mk`.
fn c_sources(csrc: &Path) -> Vec<PathBuf> {
    let list = fs::read_to_string(csrc.join("sources.mk")).expect("read csrc/sources.mk");
    let line = list
        .lines()
        .find_map(|l| l.trim().strip_prefix("UCORO_SOURCES"))
        .and_then(|rest| rest.trim_start().strip_prefix('='))
        .expect("csrc/sources.mk names UCORO_SOURCES");
    line.split_whitespace().map(|f| csrc.join(f)).collect()
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let csrc = root.join("csrc");
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=UCORO_WERROR");

    let mut build = cc::Build::new();
    build
        .files(c_sources(&csrc))
        .include(&csrc)
        .flag("-std=c11")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(env::var_os("UCORO_WERROR").is_some());
    build.compile("ucoro");
    // Tell dependents (links = "ucoro") where the headers are.
    println!("cargo:include={}", csrc.display());

    #[cfg(feature = "bindgen")]
    generate_bindings(&csrc);
}

#[cfg(feature = "bindgen")]
fn generate_bindings(csrc: &Path) {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindgen::Builder::default()
        .header(csrc.join("coroutine.h").to_str().unwrap())
        .allowlist_function("coroutine_.*|cc_.*|ucoro_.*")
        .allowlist_type("coroutine|continuation|ucoro_.*")
        .allowlist_var("UCORO_.*")
        .clang_arg("-fparse-all-comments")
        .layout_tests(true)
        .generate()
        .expect("bindgen could not parse csrc/coroutine.h")
        .write_to_file(&out)
        .expect("write bindings");
}
