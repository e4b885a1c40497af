//! Compiles the C library in `csrc/` (the same source list the Makefile
//! uses) and, with the `bindgen` feature, regenerates the raw bindings from
//! `csrc/include/ucoro/coroutine.h`.

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

/// Reruns the build when a C source or header changes; not for `csrc/build/`
/// (the Makefile's output), which would rebuild after every `make`.
fn watch_sources(dir: &Path) {
    for entry in fs::read_dir(dir).expect("read csrc") {
        let path = entry.expect("csrc entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "build") {
                watch_sources(&path);
            }
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn main() {
    // Linux only: elsewhere the crate stops with a compile_error! that says
    // so (src/lib.rs), rather than with whatever the C compiler makes of
    // Linux system calls.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let csrc = root.join("csrc");
    watch_sources(&csrc);
    println!("cargo:rerun-if-env-changed=UCORO_WERROR");
    println!("cargo:rerun-if-env-changed=UCORO_SWITCH");

    let mut build = cc::Build::new();
    build
        .files(c_sources(&csrc))
        .include(csrc.join("include/ucoro"))
        .flag("-std=c11")
        .warnings(true)
        .extra_warnings(true)
        // ISO C as well: the library is C11 plus only the extensions its
        // sources name (`__asm__`, `__attribute__`, `__thread`).
        .flag_if_supported("-Wpedantic")
        .warnings_into_errors(env::var_os("UCORO_WERROR").is_some());
    // The switch mode (csrc/cc_switch.h): the default (assembly where there
    // is one), or UCORO_SWITCH=setjmp / ucontext; CI tests every mode.
    match env::var("UCORO_SWITCH").as_deref() {
        Err(_) | Ok("") | Ok("default") => {}
        Ok("setjmp") => {
            build.define("UCORO_SWITCH_SETJMP", None);
        }
        Ok("ucontext") => {
            build.define("UCORO_SWITCH_UCONTEXT", None);
        }
        Ok(other) => panic!("UCORO_SWITCH={other}: expected default, setjmp or ucontext"),
    }
    inline_switch(env::var("UCORO_SWITCH").is_ok_and(|m| !m.is_empty() && m != "default"));
    // Under `-Zsanitizer=address` or `=thread` (nightly), instrument the C
    // too: that compiles in its fiber annotations (csrc/tools.h).
    if let Ok(sanitizers) = env::var("CARGO_CFG_SANITIZE") {
        for sanitizer in sanitizers.split(',') {
            if sanitizer == "address" || sanitizer == "thread" {
                build.flag(format!("-fsanitize={sanitizer}"));
            }
            // Rust links LLVM's ASan runtime, whose fake stacks (for
            // use-after-return) GCC-instrumented frames do not work with.
            if sanitizer == "address" && build.get_compiler().is_like_gnu() {
                build.flag("--param=asan-use-after-return=0");
            }
        }
    }
    build.compile("ucoro");
    #[cfg(feature = "bench-modes")]
    build_bench_modes(&csrc, &build);
    // Tell dependents (links = "ucoro") where the headers are, and the
    // gdb extension (DEP_UCORO_INCLUDE, DEP_UCORO_GDB_SCRIPT). The include
    // directory is laid out as an installed one: `<ucoro/coroutine.h>`, or
    // `DEP_UCORO_INCLUDE/ucoro` on the path for `"coroutine.h"`.
    println!("cargo:include={}", csrc.join("include").display());
    println!(
        "cargo:gdb_script={}",
        csrc.join("gdb/ucoro-gdb.py").display()
    );

    #[cfg(feature = "bindgen")]
    generate_bindings(&csrc);
    #[cfg(not(feature = "bindgen"))]
    if env::var("CARGO_CFG_TARGET_POINTER_WIDTH").as_deref() == Ok("32") {
        bindings_without_layout_asserts(&root);
    }
}

/// Sets `cfg(ucoro_inline_switch)` where the safe API inlines its switch
/// (src/arch/): the C library's assembly switch, whose context layout it
/// shares, on an architecture with a Rust port of it, in a build without
/// sanitizers (their fiber annotations live in the C switch). Elsewhere,
/// and when `portable_mode` (UCORO_SWITCH=setjmp or ucontext), the safe
/// API calls the C switch.
fn inline_switch(portable_mode: bool) {
    println!("cargo:rustc-check-cfg=cfg(ucoro_inline_switch)");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let sanitized = env::var("CARGO_CFG_SANITIZE").is_ok_and(|s| !s.is_empty());
    if !portable_mode && !sanitized && os == "linux" && (arch == "x86_64" || arch == "aarch64") {
        println!("cargo:rustc-cfg=ucoro_inline_switch");
    }
}

/// The committed bindings carry bindgen's layout assertions, computed on
/// x86_64: right for every LP64 target, wrong for 32-bit ones. There the
/// crate includes a copy without them (`OUT_DIR/bindings_ilp32.rs`); the
/// declarations themselves use C types (`c_ulong`, `usize`, pointers) and
/// are the same.
#[cfg(not(feature = "bindgen"))]
fn bindings_without_layout_asserts(root: &Path) {
    let committed = root.join("src/sys/bindings.rs");
    let text = fs::read_to_string(&committed).expect("read src/sys/bindings.rs");
    let mut kept = String::new();
    let mut in_asserts = false;
    for line in text.lines() {
        if line.starts_with("#[allow(clippy::unnecessary_operation") {
            in_asserts = true; // the attribute, then `const _: () = { ... };`
        }
        if !in_asserts {
            kept.push_str(line);
            kept.push('\n');
        } else if line == "};" {
            in_asserts = false;
        }
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings_ilp32.rs");
    fs::write(out, kept).expect("write bindings_ilp32.rs");
}

#[cfg(feature = "bindgen")]
fn generate_bindings(csrc: &Path) {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    // Emit only syntax the crate's declared minimum Rust accepts (bindgen's
    // default is the newest stable, e.g. `unsafe extern` blocks from 1.82).
    let msrv = env::var("CARGO_PKG_RUST_VERSION").expect("rust-version in Cargo.toml");
    let minor_patch: Vec<u64> = msrv
        .split('.')
        .skip(1)
        .map(|n| n.parse().expect("rust-version is numeric"))
        .collect();
    let target = bindgen::RustTarget::stable(minor_patch[0], *minor_patch.get(1).unwrap_or(&0))
        .expect("bindgen knows the crate's rust-version");
    bindgen::Builder::default()
        .rust_target(target)
        .header(csrc.join("include/ucoro/coroutine.h").to_str().unwrap())
        .allowlist_function("coroutine_.*|cc_.*|ucoro_.*")
        .allowlist_type("coroutine|continuation|ucoro_.*")
        .allowlist_var("UCORO_.*")
        .clang_arg("-fparse-all-comments")
        .layout_tests(true)
        .generate()
        .expect("bindgen could not parse csrc/include/ucoro/coroutine.h")
        .write_to_file(&out)
        .expect("write bindings");
}

/// With the `bench-modes` feature (benchmarks only): two more copies of the C
/// library, built like the main one but in the `UCORO_SWITCH_SETJMP` and
/// `UCORO_SWITCH_UCONTEXT` modes, so that one bench run compares the switch
/// modes. A forced-include header sets the mode and renames every library identifier
/// (`coroutine_*`, `cc_*`, `ucoro_*`, found by scanning csrc/) to
/// `ucoro_<mode>_<name>`, so the copies link next to the default library
/// without clashes and keep their own per-thread state.
/// `benches/support/modes.rs` declares the renamed API.
#[cfg(feature = "bench-modes")]
fn build_bench_modes(csrc: &Path, base: &cc::Build) {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let names = library_identifiers(csrc);
    for (mode, define) in [
        ("setjmp", "UCORO_SWITCH_SETJMP"),
        ("ucontext", "UCORO_SWITCH_UCONTEXT"),
    ] {
        // The mode is set here, after the command line: a mode macro that
        // the main build got (UCORO_SWITCH=...) must not leak into a copy.
        let mut header = format!(
            "/* Generated by build.rs: the {mode} copy of libucoro. */\n\
             #undef UCORO_SWITCH_SETJMP\n#undef UCORO_SWITCH_UCONTEXT\n#define {define} 1\n"
        );
        for name in &names {
            header.push_str(&format!("#define {name} ucoro_{mode}_{name}\n"));
        }
        let header_path = out.join(format!("rename_{mode}.h"));
        fs::write(&header_path, header).expect("write rename header");
        let objects = out.join(format!("mode_{mode}"));
        fs::create_dir_all(&objects).expect("create object dir");
        base.clone()
            .out_dir(&objects)
            .flag("-include")
            .flag(header_path.to_str().expect("UTF-8 OUT_DIR"))
            .compile(&format!("ucoro_{mode}"));
    }
}

/// Every identifier in csrc/ and its subdirectories (sources and headers,
/// comments included) with the library's prefixes, except macro names:
/// renaming all of them (types, statics, fields too) is harmless since every
/// file sees the same renaming, and it catches new helpers and global
/// variables without a list to keep. Names inside string literals (symbols
/// defined in inline assembly) are not renamed: the copies must be built in
/// modes that use no assembly switch, as the setjmp and ucontext modes are.
#[cfg(feature = "bench-modes")]
fn library_identifiers(csrc: &Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut macros = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    let mut dirs = vec![csrc.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read csrc") {
            let path = entry.expect("read csrc entry").path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            // csrc/build: the Makefile's output; csrc/tests: the C test
            // programs; csrc/glib and include/ucoro/ucoro_glib.h: the GLib
            // module, not part of the crate, whose header defines API names
            // as macros (which would keep them from being renamed).
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "build" | "glib" | "tests") {
                    dirs.push(path);
                }
            } else if matches!(ext, "c" | "h" | "S" | "s") && name != "ucoro_glib.h" {
                files.push(path);
            }
        }
    }
    for path in files {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let directive = line.trim_start().strip_prefix('#').map(str::trim_start);
            if let Some(rest) = directive.and_then(|d| d.strip_prefix("define")) {
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                macros.insert(name);
            }
        }
        let mut word = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if ["coroutine_", "cc_", "ucoro_"]
                .iter()
                .any(|p| word.starts_with(p) && word.len() > p.len())
            {
                found.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    found.retain(|n| !macros.contains(n));
    found
}
