//! The Guile module checks `lab_abi_version` when it loads: against a
//! library of another ABI it refuses to load, saying which library, which
//! versions and what to do, instead of calling functions whose arguments
//! may have changed (real guile-3.0, a real shared library).

use std::path::Path;
use std::process::Command;

fn guile_module_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guile")
}

/// The module's own ABI version is the library's: a bump of
/// `LAB_ABI_VERSION` must come with the module's.
#[test]
fn the_module_follows_the_library_abi() {
    let text = std::fs::read_to_string(guile_module_dir().join("lab/ffi.scm")).unwrap();
    let expected = format!("(define %module-abi-version {})", lab::LAB_ABI_VERSION);
    assert!(text.contains(&expected), "lab-ffi/guile/lab/ffi.scm must say {expected}");
}

#[test]
fn a_library_of_another_abi_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    // What the module binds before it checks, with another ABI version.
    let source = dir.path().join("other_abi.c");
    std::fs::write(
        &source,
        "#include <stdint.h>\n\
         void lab_string_free(char *s) { (void)s; }\n\
         const char *lab_version(void) { return \"0.0.0\"; }\n\
         uint32_t lab_abi_version(void) { return 999; }\n",
    )
    .unwrap();
    let library = dir.path().join("liblab-other.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("cc runs (./dev setup installs gcc)");
    assert!(status.success(), "the stand-in library does not compile");

    let out = Command::new("timeout")
        .args(["120", "guile", "--no-auto-compile", "-L"])
        .arg(guile_module_dir())
        .args(["-c", "(use-modules (lab ffi)) (display \"loaded\")"])
        .env("LAB_FFI_LIB", &library)
        .output()
        .expect("guile runs (./dev setup installs guile-3.0 and guile-json)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the module loaded a library of ABI 999:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("loaded"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "has lab ABI version 999, but this (lab ffi) module needs ABI version {}",
            lab::LAB_ABI_VERSION
        )) && stderr.contains(&library.display().to_string())
            && stderr.contains("LAB_FFI_LIB"),
        "{stderr}"
    );
}
