//! include/lab.h is what cbindgen generates from the sources, and its ABI
//! version matches the library's.

use std::path::Path;

fn generate() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(crate_dir).join("cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    cbindgen::Builder::new().with_crate(crate_dir).with_config(config).generate().unwrap().write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn committed_header_is_current() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/lab.h")).unwrap();
    assert!(
        committed == generate(),
        "lab-ffi/include/lab.h is stale; run `cargo test -p lab-ffi --test header -- --ignored regenerate`"
    );
    assert!(committed.contains(&format!("#define LAB_ABI_VERSION {}", lab::LAB_ABI_VERSION)));
}

#[test]
#[ignore = "writes include/lab.h"]
fn regenerate() {
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/include/lab.h"), generate()).unwrap();
}
