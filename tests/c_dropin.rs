//! The C drop-in (SPEC §1–2): libucoro built from `csrc/` alone and installed
//! by `make -C csrc install` into a temporary prefix; then the C programs of
//! `csrc/tests/` and the canonical caller `examples/c/seed_test.c` are compiled
//! against the *installed* headers and libraries through pkg-config, as a C
//! project would do it, once against the shared and once against the static
//! library.
//!
//! Needs `make`, a C compiler (`$CC`/`cc`), binutils (`nm`, `readelf`) and
//! `stdbuf` (coreutils). Uses more where found: `pkg-config` (without it
//! the programs take their flags from the installed `.pc` files directly,
//! and the test of pkg-config itself is skipped), GLib's development files
//! (`libglib2.0-dev`: the ucoro-glib module and its tests) and a C++
//! compiler (`$CXX`/`c++`: the header in C++). A test that needs a missing
//! one prints `SKIP <test>: <why>` and passes, unless
//! `UCORO_REQUIRE_ALL_TOOLS=1` (CI) makes every skip a failure.
//!
//! Everything is written under `$TMPDIR/ucoro-c-dropin-<pid>`, kept after the
//! run for inspection and removed by the next run.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const VERSION_MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");
const WORK_DIR_PREFIX: &str = "ucoro-c-dropin-";
/// No C test takes more than a few seconds; a hang must not hang `cargo test`.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The functions a version script exports, as "NODE name" lines: every
/// name between `global:` and `local:`, under the node it is listed in.
fn version_script_exports(map: &str) -> Vec<String> {
    let text = fs::read_to_string(Path::new(ROOT).join(map)).unwrap();
    let (mut node, mut global, mut found) = ("", false, Vec::new());
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix('{') {
            node = name.trim();
        } else if line == "global:" {
            global = true;
        } else if line == "local:" {
            global = false;
        } else if global && !line.is_empty() {
            found.push(format!("{node} {}", line.trim_end_matches(';')));
        }
    }
    found.sort();
    found
}

/// What the shared library defines in its dynamic table, as "NODE name"
/// lines ("- name" where a symbol has no version); the version nodes' own
/// absolute symbols are left out.
fn dynamic_exports(so: &Path) -> Vec<String> {
    let table = stdout_of(Command::new("readelf").args(["--dyn-syms", "-W"]).arg(so));
    let mut found: Vec<String> = table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let defined = f.len() == 8 && f[6] != "UND" && f[6] != "ABS";
            (defined && matches!(f[4], "GLOBAL" | "WEAK")).then(|| match f[7].split_once('@') {
                Some((name, version)) => format!("{} {name}", version.trim_start_matches('@')),
                None => format!("- {}", f[7]),
            })
        })
        .collect();
    found.sort();
    found
}

/// What `make install` puts under the prefix (symbolic links included):
/// libucoro, the GLib module libucoro-glib (where GLib is found), and the
/// gdb extension.
fn installed_files(prefix: &Path, glib: bool) -> Vec<String> {
    let mut files = vec![
        "include/ucoro/continuation.h".to_string(),
        "include/ucoro/coroutine.h".to_string(),
        "include/ucoro/ucoro_version.h".to_string(),
        "lib/pkgconfig/ucoro.pc".to_string(),
        // The gdb extension, and gdb's auto-load script for the shared
        // library: under share/gdb/auto-load, the library's absolute path.
        "share/ucoro/ucoro-gdb.py".to_string(),
        format!(
            "share/gdb/auto-load{}/lib/libucoro.so.{VERSION}-gdb.py",
            prefix.display()
        ),
    ];
    let libs: &[&str] = if glib {
        files.push("include/ucoro/ucoro_glib.h".to_string());
        files.push("lib/pkgconfig/ucoro-glib.pc".to_string());
        &["libucoro", "libucoro-glib"]
    } else {
        &["libucoro"]
    };
    for lib in libs {
        files.push(format!("lib/{lib}.a"));
        files.push(format!("lib/{lib}.so"));
        files.push(format!("lib/{lib}.so.{VERSION_MAJOR}"));
        files.push(format!("lib/{lib}.so.{VERSION}"));
    }
    files.sort();
    files
}

// ---- optional tools -------------------------------------------------------------

/// Whether every optional tool must be there (CI: UCORO_REQUIRE_ALL_TOOLS=1).
fn all_tools_required() -> bool {
    env::var("UCORO_REQUIRE_ALL_TOOLS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skips the calling test for want of a tool: prints one line, straight to
/// the process's stderr (the test harness would hide a captured line of a
/// test that passes), or fails it where every tool is required.
fn skip(why: &str) {
    let thread = thread::current();
    let test = thread.name().unwrap_or("c_dropin");
    assert!(
        !all_tools_required(),
        "{test}: {why}, and UCORO_REQUIRE_ALL_TOOLS is set"
    );
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// Whether `program --version` runs.
fn runs(program: &OsString) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pkg_config_program() -> OsString {
    env::var_os("PKG_CONFIG").unwrap_or_else(|| "pkg-config".into())
}

fn cxx_program() -> OsString {
    env::var_os("CXX").unwrap_or_else(|| "c++".into())
}

fn pkg_config_found() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| runs(&pkg_config_program()))
}

fn cxx_found() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| runs(&cxx_program()))
}

/// Whether pkg-config finds GLib's development files (what decides whether
/// `make install` builds the ucoro-glib module).
fn glib_found() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        pkg_config_found()
            && Command::new(pkg_config_program())
                .args(["--exists", "glib-2.0"])
                .status()
                .is_ok_and(|s| s.success())
    })
}

/// For the GLib tests: false (after a skip line) where GLib is not found.
fn have_glib() -> bool {
    if !glib_found() {
        skip(
            "GLib not found by `pkg-config glib-2.0` (Debian/Ubuntu: libglib2.0-dev and \
             pkg-config)",
        );
    }
    glib_found()
}

/// What `pkg-config ARGS` would print for the modules of a .pc directory,
/// read from the files themselves: for machines without pkg-config. Knows
/// what ucoro.pc uses: `name=value` variables, Cflags, Libs, Libs.private,
/// --cflags, --libs, --static, --modversion; modules other than those in
/// dir (GLib) are not resolved.
fn read_pc(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let is_static = args.contains(&"--static");
    let modules = args.iter().filter(|a| !a.starts_with("--"));
    for module in modules {
        let path = dir.join(format!("{module}.pc"));
        let text = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (reading it for want of pkg-config)",
                path.display()
            )
        });
        let mut vars: Vec<(String, String)> = Vec::new();
        let expand = |value: &str, vars: &[(String, String)]| {
            vars.iter().fold(value.to_string(), |v, (name, val)| {
                v.replace(&format!("${{{name}}}"), val)
            })
        };
        let field = |name: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        for line in text.lines() {
            if let Some((name, value)) = line.split_once('=') {
                if !name.contains(':') && !name.contains(' ') {
                    let value = expand(value.trim(), &vars);
                    vars.push((name.to_string(), value));
                }
            }
        }
        let mut wanted = Vec::new();
        if args.contains(&"--modversion") {
            wanted.push(field("Version"));
        }
        if args.contains(&"--cflags") {
            wanted.push(field("Cflags"));
        }
        if args.contains(&"--libs") {
            wanted.push(field("Libs"));
            if is_static {
                wanted.push(field("Libs.private"));
            }
        }
        for value in wanted.into_iter().flatten() {
            out.extend(expand(&value, &vars).split_whitespace().map(str::to_string));
        }
    }
    out
}

// ---- the installation every test shares ----------------------------------

struct Install {
    /// This run's scratch directory: build directories, prefix, binaries.
    work: PathBuf,
    prefix: PathBuf,
    /// Whether the install has the ucoro-glib module (GLib was found).
    glib: bool,
}

impl Install {
    fn libdir(&self) -> PathBuf {
        self.prefix.join("lib")
    }

    /// pkg-config with the installed ucoro.pc first in its search path; for
    /// want of pkg-config, the installed .pc files read directly.
    fn pkg_config(&self, args: &[&str]) -> Vec<String> {
        if !pkg_config_found() {
            return read_pc(&self.libdir().join("pkgconfig"), args);
        }
        let mut path = OsString::from(self.libdir().join("pkgconfig"));
        if let Some(old) = env::var_os("PKG_CONFIG_PATH") {
            path.push(":");
            path.push(old);
        }
        let out = run_ok(
            Command::new(pkg_config_program())
                .args(args)
                .env("PKG_CONFIG_PATH", path),
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

fn installed() -> &'static Install {
    static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
    INSTALL
        .get_or_init(install)
        .as_ref()
        .unwrap_or_else(|e| panic!("make -C csrc install failed:\n{e}"))
}

/// How the installs build the GLib module: where it is found, and always
/// where every tool is required (then a missing GLib fails the install).
fn with_glib() -> &'static str {
    if all_tools_required() || glib_found() {
        "WITH_GLIB=yes"
    } else {
        "WITH_GLIB=no"
    }
}

/// `make -C csrc install` into a fresh prefix, building out of the source
/// tree (BUILDDIR) so that the test leaves csrc/ untouched; with the GLib
/// module where GLib is found (with_glib).
fn install() -> Result<Install, String> {
    let tmp = env::temp_dir();
    remove_stale_work_dirs(&tmp);
    let work = tmp.join(format!("{WORK_DIR_PREFIX}{}", std::process::id()));
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let prefix = work.join("prefix");
    output(make(&Path::new(ROOT).join("csrc")).args([
        "install".into(),
        with_glib().into(),
        assign("PREFIX", &prefix),
        assign("BUILDDIR", &work.join("build")),
    ]))?;
    let glib = with_glib() == "WITH_GLIB=yes";
    Ok(Install { work, prefix, glib })
}

/// Removes the scratch directories of earlier runs whose process is gone.
fn remove_stale_work_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORK_DIR_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

// ---- running tools --------------------------------------------------------

fn make(dir: &Path) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(dir);
    // Not part of an outer make's job server, whoever runs cargo.
    for var in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"] {
        cmd.env_remove(var);
    }
    cmd
}

/// `NAME=path` as one make argument.
fn assign(name: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(format!("{name}="));
    arg.push(path);
    arg
}

/// Runs cmd to completion; Err with everything it printed unless it succeeded.
fn output(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?} failed ({})\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    output(cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

/// Runs a test program with a time limit; its output goes to files next to
/// it, so that nothing blocks on a full pipe.
fn run_program(cmd: &mut Command, name: &Path) -> (ExitStatus, String, String) {
    let out_path = name.with_extension("stdout");
    let err_path = name.with_extension("stderr");
    let mut child = cmd
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {RUN_LIMIT:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    (
        status,
        fs::read_to_string(&out_path).unwrap_or_default(),
        fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

fn nm(args: &[&str], file: &Path) -> String {
    stdout_of(Command::new("nm").args(args).arg(file))
}

/// The symbol names of `nm` output ("<addr> <type> <name>" lines; archive
/// member headers and undefined symbols' shorter lines are skipped).
fn symbol_names(nm_output: &str) -> Vec<String> {
    nm_output
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() == 3).then(|| fields[2].split('@').next().unwrap().to_string())
        })
        .collect()
}

/// The DT_NEEDED and DT_SONAME entries of an ELF file, as "NEEDED name".
fn dynamic_entries(file: &Path) -> Vec<String> {
    stdout_of(Command::new("readelf").arg("-d").arg(file))
        .lines()
        .filter_map(|line| {
            let kind = ["NEEDED", "SONAME"]
                .into_iter()
                .find(|k| line.contains(&format!("({k})")))?;
            let name = line.split('[').nth(1)?.trim_end_matches(']');
            Some(format!("{kind} {name}"))
        })
        .collect()
}

/// Every file and link below dir, relative to it, sorted; directories are
/// left out.
fn files_below(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(base, &path, found);
            } else {
                let rel = path.strip_prefix(base).unwrap();
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut found = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut found);
    }
    found.sort();
    found
}

fn copy_tree(from: &Path, to: &Path, skip: &str) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_name() == skip {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, skip);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

// ---- building C programs against the installation -------------------------

#[derive(Clone, Copy, Debug)]
enum Link {
    Shared,
    Static,
}

/// The pkg-config module a C program takes ucoro from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Module {
    /// `ucoro`: libucoro alone.
    Ucoro,
    /// `ucoro-glib`: misuse as GLib criticals, through libucoro-glib.
    UcoroGlib,
}

impl Module {
    fn name(self) -> &'static str {
        match self {
            Module::Ucoro => "ucoro",
            Module::UcoroGlib => "ucoro-glib",
        }
    }
}

/// Compiles source (C, or C++ for .cpp) against the installed ucoro, plus
/// the pkg-config packages pkgs, and checks that the binary depends on the
/// shared library by its soname, or not at all when linked statically.
fn build(source: &Path, flags: &[&str], pkgs: &[&str], link: Link, tag: &str) -> PathBuf {
    build_with(Module::Ucoro, source, flags, pkgs, link, tag)
}

/// build, taking ucoro from module. ucoro-glib is linked shared with
/// --as-needed (Meson's default), which must keep libucoro-glib.
fn build_with(
    module: Module,
    source: &Path,
    flags: &[&str],
    pkgs: &[&str],
    link: Link,
    tag: &str,
) -> PathBuf {
    let inst = installed();
    let is_cxx = source.extension().is_some_and(|e| e == "cpp");
    let compiler = if is_cxx {
        cxx_program()
    } else {
        env::var_os("CC").unwrap_or_else(|| "cc".into())
    };
    let stem = source.file_stem().unwrap().to_string_lossy();
    let bin_dir = inst.work.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let binary = bin_dir.join(format!("{stem}-{tag}-{link:?}").to_lowercase());

    let mut cflags_args = vec!["--cflags", module.name()];
    cflags_args.extend_from_slice(pkgs);
    let mut cmd = Command::new(compiler);
    cmd.args(flags)
        .args(inst.pkg_config(&cflags_args))
        .arg(source)
        .arg("-o")
        .arg(&binary);
    match link {
        Link::Shared => {
            if module == Module::UcoroGlib {
                cmd.arg("-Wl,--as-needed");
            }
            cmd.args(inst.pkg_config(&["--libs", module.name()]));
            let mut rpath = OsString::from("-Wl,-rpath,");
            rpath.push(inst.libdir());
            cmd.arg(rpath);
        }
        Link::Static => {
            // Libs.private comes in with --static; -l:libucoro.a makes the
            // linker take the archive although the .so sits next to it.
            let libs = inst.pkg_config(&["--static", "--libs", module.name()]);
            assert!(libs.iter().any(|l| l == "-lucoro"), "{libs:?}");
            cmd.args(libs.into_iter().map(|l| match l.as_str() {
                "-lucoro" | "-lucoro-glib" => format!("-l:lib{}.a", &l[2..]),
                _ => l,
            }));
        }
    }
    if !pkgs.is_empty() {
        let mut libs_args = vec!["--libs"];
        libs_args.extend_from_slice(pkgs);
        cmd.args(inst.pkg_config(&libs_args));
    }
    run_ok(&mut cmd);

    let needs_ucoro: Vec<String> = dynamic_entries(&binary)
        .into_iter()
        .filter(|e| e.starts_with("NEEDED libucoro"))
        .collect();
    let soname = format!("NEEDED lib{}.so.{VERSION_MAJOR}", module.name());
    match link {
        Link::Shared => assert!(
            needs_ucoro.contains(&soname),
            "{} should load lib{}, by its soname: {needs_ucoro:?}",
            binary.display(),
            module.name()
        ),
        Link::Static => assert!(
            needs_ucoro.is_empty(),
            "{} is linked statically, yet needs {needs_ucoro:?}",
            binary.display()
        ),
    }
    binary
}

/// LD_LIBRARY_PATH with the installed library first. The binaries' rpath
/// already points there; this also wins over anything system-wide.
fn library_path() -> OsString {
    let mut path = OsString::from(installed().libdir());
    if let Some(old) = env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(old);
    }
    path
}

/// Builds and runs one program of csrc/tests, which must exit 0 and end with
/// "<n> passed, 0 failed". Returns its output.
fn c_suite(file: &str, std: &str, link: Link, pkgs: &[&str], extra: &[&str]) -> String {
    c_suite_with(Module::Ucoro, file, std, link, pkgs, extra)
}

/// c_suite, with ucoro taken from module.
fn c_suite_with(
    module: Module,
    file: &str,
    std: &str,
    link: Link,
    pkgs: &[&str],
    extra: &[&str],
) -> String {
    let source = Path::new(ROOT).join("csrc/tests").join(file);
    if file.ends_with(".cpp") && !cxx_found() {
        skip(&format!(
            "no C++ compiler ({}; Debian/Ubuntu: g++)",
            cxx_program().to_string_lossy()
        ));
        return String::new();
    }
    let std_flag = format!("-std={std}");
    let mut flags = vec![
        std_flag.as_str(),
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ];
    flags.extend_from_slice(extra);
    let binary = build_with(module, &source, &flags, pkgs, link, std);
    let (status, stdout, stderr) = run_program(
        Command::new(&binary).env("LD_LIBRARY_PATH", library_path()),
        &binary,
    );
    let last = stdout.lines().last().unwrap_or("");
    let passed = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        status.success() && passed.is_some_and(|n| n > 0),
        "{file} ({std}, {link:?}) failed: {status}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    );
    stdout
}

// ---- what make install produced ----------------------------------------------

#[test]
fn install_puts_headers_libraries_and_pc_file_in_the_prefix() {
    let inst = installed();
    assert_eq!(
        files_below(&inst.prefix),
        installed_files(&inst.prefix, inst.glib)
    );
    // Nothing with a generic name directly in include/.
    assert!(
        !inst.prefix.join("include/coroutine.h").exists(),
        "coroutine.h must install in include/ucoro/ only"
    );
    let lib = inst.libdir();
    assert_eq!(
        fs::read_link(lib.join("libucoro.so")).unwrap(),
        Path::new(&format!("libucoro.so.{VERSION_MAJOR}"))
    );
    assert_eq!(
        fs::read_link(lib.join(format!("libucoro.so.{VERSION_MAJOR}"))).unwrap(),
        Path::new(&format!("libucoro.so.{VERSION}"))
    );
    assert!(
        fs::symlink_metadata(lib.join(format!("libucoro.so.{VERSION}")))
            .unwrap()
            .is_file()
    );
    // The public headers are installed as they are in csrc/include/ucoro.
    for header in ["coroutine.h", "continuation.h"] {
        assert_eq!(
            fs::read(inst.prefix.join("include/ucoro").join(header)).unwrap(),
            fs::read(Path::new(ROOT).join("csrc/include/ucoro").join(header)).unwrap(),
            "{header}"
        );
    }
}

#[test]
fn pkg_config_gives_the_crate_version_and_the_flags() {
    let inst = installed();
    if !pkg_config_found() {
        return skip("no pkg-config (Debian/Ubuntu: pkg-config)");
    }
    assert_eq!(inst.pkg_config(&["--modversion", "ucoro"]), [VERSION]);
    assert_eq!(
        inst.pkg_config(&["--cflags", "ucoro"]),
        [
            format!("-I{}", inst.prefix.join("include/ucoro").display()),
            format!("-I{}", inst.prefix.join("include").display())
        ]
    );
    assert_eq!(
        inst.pkg_config(&["--libs", "ucoro"]),
        [format!("-L{}", inst.libdir().display()), "-lucoro".into()]
    );
    let static_libs = inst.pkg_config(&["--static", "--libs", "ucoro"]);
    assert!(
        static_libs.iter().any(|l| l == "-lpthread"),
        "{static_libs:?}"
    );
    let pc = fs::read_to_string(inst.libdir().join("pkgconfig/ucoro.pc")).unwrap();
    for line in [
        "Cflags: -I${includedir}/ucoro -I${includedir}",
        "Libs: -L${libdir} -lucoro",
        "Libs.private: -lpthread",
    ] {
        assert!(pc.lines().any(|l| l == line), "no `{line}` in\n{pc}");
    }
}

#[test]
fn version_header_carries_the_crate_version() {
    let header =
        fs::read_to_string(installed().prefix.join("include/ucoro/ucoro_version.h")).unwrap();
    let parts: Vec<&str> = VERSION.split(['.', '-', '+']).collect();
    for (name, value) in [
        ("UCORO_VERSION_MAJOR", parts[0].to_string()),
        ("UCORO_VERSION_MINOR", parts[1].to_string()),
        ("UCORO_VERSION_PATCH", parts[2].to_string()),
        ("UCORO_VERSION", format!("\"{VERSION}\"")),
    ] {
        let line = format!("#define {name} {value}");
        assert!(
            header.lines().any(|l| l == line),
            "no `{line}` in\n{header}"
        );
    }
}

/// The API as a packager's tools see it: each function of the version
/// script, and nothing else, in the dynamic table with its version node
/// (`readelf --dyn-syms` shows `coroutine_init@@UCORO_1.0`).
#[test]
fn shared_libraries_export_exactly_the_version_scripts_functions_each_versioned() {
    let inst = installed();
    let mut libraries = vec![("libucoro", "csrc/libucoro.map")];
    if inst.glib {
        libraries.push(("libucoro-glib", "csrc/glib/libucoro-glib.map"));
    }
    for (lib, map) in libraries {
        let so = inst.libdir().join(format!("{lib}.so.{VERSION}"));
        let listed = version_script_exports(map);
        assert!(listed.len() > 5, "{map} lists {listed:?}");
        assert_eq!(dynamic_exports(&so), listed, "{lib} against {map}");
        assert!(
            listed.iter().all(|l| l.starts_with("UCORO_")),
            "every function under a named version node: {listed:?}"
        );
    }
    let so = inst.libdir().join(format!("libucoro.so.{VERSION}"));
    // The caller defines coroutine_enter (SPEC §1); the library must not.
    assert!(!version_script_exports("csrc/libucoro.map")
        .iter()
        .any(|l| l.ends_with(" coroutine_enter")));
    let undefined = nm(&["-D", "--undefined-only"], &so);
    assert!(!undefined.contains("rust"), "{undefined}");
    assert!(dynamic_entries(&so).contains(&format!("SONAME libucoro.so.{VERSION_MAJOR}")));
}

#[test]
fn static_library_holds_no_rust_and_defines_only_api_names() {
    let archive = installed().libdir().join("libucoro.a");
    let all = nm(&[], &archive);
    for rust in ["rust_", "_ZN", "__rust"] {
        assert!(!all.contains(rust), "`{rust}` in nm libucoro.a:\n{all}");
    }
    // Internal ucoro__ helpers are global in the archive (hidden only in the
    // shared library), so only the three prefixes are checked here.
    let defined = symbol_names(&nm(&["-g", "--defined-only"], &archive));
    let foreign: Vec<&String> = defined
        .iter()
        .filter(|n| {
            !(n.starts_with("coroutine_") || n.starts_with("cc_") || n.starts_with("ucoro_"))
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "global symbols outside the API prefixes: {foreign:?}"
    );
    assert!(!defined.iter().any(|n| n == "coroutine_enter"));
}

// ---- the C test programs, against both libraries ------------------------------

macro_rules! c_suites {
    ($($name:ident: $file:literal, $std:literal, $link:ident, [$($pkg:literal),*], [$($flag:literal),*];)*) => {
        $(
            #[test]
            fn $name() {
                c_suite($file, $std, Link::$link, &[$($pkg),*], &[$($flag),*]);
            }
        )*
    };
}

c_suites! {
    abi_layout_in_c89_shared: "abi_layout.c", "c89", Shared, [], [];
    spec_api_shared: "spec_api.c", "c11", Shared, [], ["-pthread"];
    spec_api_static: "spec_api.c", "c11", Static, [], ["-pthread"];
    headers_in_c89_shared: "header_check.c", "c89", Shared, [], [];
    headers_in_c89_static: "header_check.c", "c89", Static, [], [];
    headers_in_c99_shared: "header_check.c", "c99", Shared, [], [];
    headers_in_c11_static: "header_check.c", "c11", Static, [], [];
    headers_in_cxx17_shared: "cxx_header.cpp", "c++17", Shared, [], [];
    headers_in_cxx17_static: "cxx_header.cpp", "c++17", Static, [], [];
    spice_gtk_style_shared: "styles_spice.c", "c99", Shared, [], [];
    spice_gtk_style_static: "styles_spice.c", "c99", Static, [], [];
    gtk_vnc_style_shared: "styles_gtkvnc.c", "c89", Shared, [], [];
    gtk_vnc_style_static: "styles_gtkvnc.c", "c89", Static, [], [];
    tls_migration_c_o2: "tls_migration.c", "c11", Shared, [], ["-pthread", "-O2"];
    fork_while_another_thread_holds_the_library_shared: "fork_safety.c", "c11", Shared, [], ["-pthread"];
    fork_while_another_thread_holds_the_library_static: "fork_safety.c", "c11", Static, [], ["-pthread"];
    stacks_freed_at_thread_exit_are_given_back_shared: "thread_exit.c", "c11", Shared, [], ["-pthread"];
    stacks_freed_at_thread_exit_are_given_back_static: "thread_exit.c", "c11", Static, [], ["-pthread"];
    unwinding_from_a_signal_handler_during_switches_shared: "signal_unwind.c", "c11", Shared, [], [];
    unwinding_from_a_signal_handler_during_switches_static: "signal_unwind.c", "c11", Static, [], [];
    embedding_runtime_api_shared: "embed_api.c", "c11", Shared, [], ["-pthread"];
    embedding_runtime_api_static: "embed_api.c", "c11", Static, [], ["-pthread"];
}

#[test]
fn header_check_prints_the_crate_version() {
    let stdout = c_suite("header_check.c", "c11", Link::Shared, &[], &[]);
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("UCORO_VERSION={VERSION}")),
        "{stdout}"
    );
}

#[test]
fn glib_forwarder_turns_diagnostics_into_criticals_shared() {
    if !have_glib() {
        return;
    }
    c_suite("glib_forward.c", "c11", Link::Shared, &["glib-2.0"], &[]);
}

#[test]
fn glib_forwarder_turns_diagnostics_into_criticals_static() {
    if !have_glib() {
        return;
    }
    c_suite("glib_forward.c", "c11", Link::Static, &["glib-2.0"], &[]);
}

// No handler code in the program: the ucoro-glib module alone.
#[test]
fn glib_module_reports_criticals_in_the_callers_domain_shared_as_needed() {
    if !have_glib() {
        return;
    }
    c_suite_with(
        Module::UcoroGlib,
        "glib_module.c",
        "c11",
        Link::Shared,
        &[],
        &[],
    );
}

#[test]
fn glib_module_reports_criticals_in_the_callers_domain_static() {
    if !have_glib() {
        return;
    }
    c_suite_with(
        Module::UcoroGlib,
        "glib_module.c",
        "c11",
        Link::Static,
        &[],
        &[],
    );
}

// ---- the canonical caller (SPEC §1) -------------------------------------------

/// Builds examples/c/seed_test.c as its header comment says (-DWITH_UCONTEXT,
/// no -Werror: it lacks <stdlib.h> and <unistd.h>), runs it for 3.5 s and
/// checks that the two "Yield to" lines alternate. Its stdout is a pipe, so
/// printf would buffer whole blocks and lose them when the process is
/// killed: stdbuf -oL makes it line-buffered (through LD_PRELOAD, which works
/// for both builds since libc stays dynamic).
fn seed_test_alternates(link: Link) {
    let source = Path::new(ROOT).join("examples/c/seed_test.c");
    let flags = [
        "-DWITH_UCONTEXT",
        // GCC 14 and Clang 16 turn these into errors by default.
        "-Wno-error=implicit-function-declaration",
        "-Wno-error=int-conversion",
    ];
    let binary = build(&source, &flags, &[], link, "seed");
    let mut child = Command::new("stdbuf")
        .arg("-oL")
        .arg(&binary)
        .env("LD_LIBRARY_PATH", library_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `stdbuf -oL` (GNU coreutils): {e}"));
    thread::sleep(Duration::from_millis(3500));
    let early_exit = child.try_wait().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        early_exit.is_none(),
        "seed_test ({link:?}) must run forever, but ended: {early_exit:?}\n\
         --- stdout\n{stdout}--- stderr\n{stderr}"
    );
    assert!(stderr.is_empty(), "seed_test wrote to stderr:\n{stderr}");

    let yields: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Yield to"))
        .collect();
    for (i, line) in yields.iter().enumerate() {
        let expected = if i % 2 == 0 {
            "Yield to coroutine context"
        } else {
            "Yield to caller context"
        };
        assert_eq!(*line, expected, "line {i} of the Yield lines in\n{stdout}");
    }
    // One round a second: 3 in 3.5 s; 2 leave room for a loaded machine.
    let rounds = yields
        .iter()
        .filter(|l| **l == "Yield to caller context")
        .count();
    assert!(rounds >= 2, "only {rounds} rounds in 3.5 s:\n{stdout}");
    assert!(stdout.contains("\nI am in caller context\n"), "{stdout}");
    assert!(stdout.contains("\nI am in coroutine context\n"), "{stdout}");
}

#[test]
fn seed_test_alternates_with_the_shared_library() {
    seed_test_alternates(Link::Shared);
}

#[test]
fn seed_test_alternates_with_the_static_library() {
    seed_test_alternates(Link::Static);
}

// ---- dlopen and dlclose --------------------------------------------------------

/// A program that dlopens libucoro (as a plugin's dependency), runs a
/// coroutine on a thread and dlcloses the library before that thread exits:
/// the library's per-thread destructor and signal handler must still find
/// their code (the libraries are linked -z nodelete).
#[test]
fn dlclose_leaves_the_library_loaded_for_its_destructors() {
    let inst = installed();
    let source = Path::new(ROOT).join("csrc/tests/dlclose_safety.c");
    let binary = inst.work.join("bin").join("dlclose_safety");
    fs::create_dir_all(binary.parent().unwrap()).unwrap();
    run_ok(
        Command::new(env::var_os("CC").unwrap_or_else(|| "cc".into()))
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .args(inst.pkg_config(&["--cflags", "ucoro"]))
            .arg(&source)
            .arg("-ldl")
            .arg("-o")
            .arg(&binary),
    );
    let library = inst.libdir().join(format!("libucoro.so.{VERSION_MAJOR}"));
    let (status, stdout, stderr) = run_program(Command::new(&binary).arg(&library), &binary);
    assert!(
        status.success() && stdout.ends_with(" passed, 0 failed\n"),
        "dlclose_safety: {status}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    );
    // libucoro-glib leaves its diagnostic handler in libucoro: the same flag.
    let names: &[&str] = if inst.glib {
        &["ucoro", "ucoro-glib"]
    } else {
        &["ucoro"]
    };
    for name in names {
        let file = inst.libdir().join(format!("lib{name}.so.{VERSION_MAJOR}"));
        let dynamic = stdout_of(Command::new("readelf").arg("-d").arg(&file));
        assert!(
            dynamic
                .lines()
                .any(|l| l.contains("(FLAGS_1)") && l.contains("NODELETE")),
            "lib{name} is not linked -z nodelete:\n{dynamic}"
        );
    }
}

// ---- scale and stack overflow, through the installed library ----------------

/// Builds csrc/tests/scale_overflow.c against the installed library (one
/// binary per scenario: tests run in parallel) and runs it with args.
fn run_scale(link: Link, args: &[&str]) -> (ExitStatus, String, String) {
    let source = Path::new(ROOT).join("csrc/tests/scale_overflow.c");
    let flags = [
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ];
    let binary = build(&source, &flags, &[], link, args[0]);
    run_program(
        Command::new(&binary)
            .args(args)
            .env("LD_LIBRARY_PATH", library_path())
            .env_remove("UCORO_OVERFLOW_REPORTING"),
        &binary,
    )
}

/// 100,000 suspended coroutines with the default stack size, each with a
/// guard that traps, within the memory targets (the program checks
/// them: <= 4.5 KiB resident, <= 9 KiB with page tables, per coroutine).
fn installed_library_holds_many_guarded_coroutines(link: Link) {
    let (status, stdout, stderr) = run_scale(link, &["many", "100000"]);
    assert!(
        status.success() && stdout.ends_with(" passed, 0 failed\n"),
        "scale_overflow many ({link:?}): {status}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("suspended at once: 100000\n") || stdout.contains("NOTE: no MADV_GUARD"),
        "{stdout}"
    );
}

#[test]
fn installed_library_holds_100000_guarded_coroutines_shared() {
    installed_library_holds_many_guarded_coroutines(Link::Shared);
}

#[test]
fn installed_library_holds_100000_guarded_coroutines_static() {
    installed_library_holds_many_guarded_coroutines(Link::Static);
}

/// An overflow stops the process with the library's report naming the
/// victim, by SIGSEGV; with a handler of the program's own installed after
/// the library's, that handler sees the fault in the victim's guard and the
/// neighbouring stack intact.
fn installed_library_reports_overflow(link: Link) {
    use std::os::unix::process::ExitStatusExt;

    let (status, stdout, stderr) = run_scale(link, &["overflow"]);
    let victim = stdout
        .lines()
        .find_map(|l| l.strip_prefix("victim "))
        .unwrap_or_else(|| panic!("no victim line:\n{stdout}\n{stderr}"));
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "{status}\n--- stderr\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "ucoro: stack overflow in coroutine {victim} (stack 65536 bytes)"
        )),
        "the report must name the victim ({victim}):\n{stderr}"
    );

    let (status, _, stderr) = run_scale(link, &["judged"]);
    assert!(
        status.success()
            && stderr.contains("verdict: fault in the victim's guard, neighbour intact"),
        "{status}\n--- stderr\n{stderr}"
    );
    assert!(!stderr.contains("ucoro: stack overflow"), "{stderr}");
}

#[test]
fn installed_library_reports_overflow_shared() {
    installed_library_reports_overflow(Link::Shared);
}

#[test]
fn installed_library_reports_overflow_static() {
    installed_library_reports_overflow(Link::Static);
}

// ---- the Makefile itself ------------------------------------------------------

#[test]
fn install_honours_destdir_and_uninstall_leaves_only_directories() {
    let work = &installed().work;
    let stage = work.join("stage");
    let build_dir = work.join("build-destdir");
    let vars = [
        assign("DESTDIR", &stage),
        "PREFIX=/opt/ucoro".into(),
        with_glib().into(),
        assign("BUILDDIR", &build_dir),
    ];
    let csrc = Path::new(ROOT).join("csrc");
    run_ok(make(&csrc).arg("install").args(&vars));
    let staged = stage.join("opt/ucoro");
    assert_eq!(
        files_below(&staged),
        installed_files(Path::new("/opt/ucoro"), installed().glib)
    );
    let pc = fs::read_to_string(staged.join("lib/pkgconfig/ucoro.pc")).unwrap();
    assert!(pc.lines().any(|l| l == "prefix=/opt/ucoro"), "{pc}");

    run_ok(make(&csrc).arg("uninstall").args(&vars));
    assert_eq!(files_below(&stage), Vec::<String>::new());
}

/// csrc/VERSION carries the version where Cargo.toml is not (the release
/// tarball, Meson's project()); it must follow the crate.
#[test]
fn csrc_version_file_holds_the_crate_version() {
    let file = fs::read_to_string(Path::new(ROOT).join("csrc/VERSION")).unwrap();
    assert_eq!(
        file.trim_end(),
        VERSION,
        "csrc/VERSION must hold the Cargo.toml version"
    );
}

#[test]
fn csrc_alone_builds_given_a_version_and_compiles_the_sources_mk_list() {
    let work = &installed().work;
    let copy = work.join("csrc-alone/csrc");
    copy_tree(&Path::new(ROOT).join("csrc"), &copy, "build");
    let build_dir = work.join("csrc-alone/build");

    // Without ../Cargo.toml and csrc/VERSION the version must be given.
    fs::remove_file(copy.join("VERSION")).unwrap();
    let refused = make(&copy)
        .arg(assign("BUILDDIR", &build_dir))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("VERSION=x.y.z"), "{stderr}");

    // A source added to sources.mk alone is compiled: the list lives there.
    fs::write(
        copy.join("probe_source.c"),
        "int ucoro_probe_from_sources_mk(void);\nint ucoro_probe_from_sources_mk(void) { return 1; }\n",
    )
    .unwrap();
    let list = fs::read_to_string(copy.join("sources.mk")).unwrap();
    let list = list.replace("UCORO_SOURCES =", "UCORO_SOURCES = probe_source.c");
    assert!(
        list.contains("probe_source.c"),
        "unexpected sources.mk:\n{list}"
    );
    fs::write(copy.join("sources.mk"), list).unwrap();

    run_ok(make(&copy).args([
        assign("BUILDDIR", &build_dir),
        "VERSION=9.8.7".into(),
        "WITH_GLIB=no".into(),
    ]));
    let so = build_dir.join("libucoro.so.9.8.7");
    assert!(dynamic_entries(&so).contains(&"SONAME libucoro.so.9".to_string()));
    // Compiled in, yet not exported: the version script lists every
    // exported function by name, and this one it does not list.
    assert!(
        symbol_names(&nm(&["--defined-only"], &build_dir.join("libucoro.a")))
            .iter()
            .any(|n| n == "ucoro_probe_from_sources_mk")
    );
    assert!(!symbol_names(&nm(&["-D", "--defined-only"], &so))
        .iter()
        .any(|n| n == "ucoro_probe_from_sources_mk"));
    let header = fs::read_to_string(build_dir.join("ucoro_version.h")).unwrap();
    assert!(
        header.contains("#define UCORO_VERSION_MAJOR 9\n"),
        "{header}"
    );
    assert!(
        header.contains("#define UCORO_VERSION \"9.8.7\"\n"),
        "{header}"
    );
}
