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

/// With `LAB_REGENERATE_HEADER=1` the test writes the header instead of
/// failing (as insta's INSTA_UPDATE does for snapshots), so no ignored test
/// stands in the suite's count.
#[test]
fn committed_header_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/lab.h");
    let generated = generate();
    if std::env::var_os("LAB_REGENERATE_HEADER").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == generated,
        "lab-ffi/include/lab.h is stale; run `LAB_REGENERATE_HEADER=1 cargo test -p lab-ffi --test header`"
    );
    assert!(committed.contains(&format!("#define LAB_ABI_VERSION {}", lab::LAB_ABI_VERSION)));
}
