//! `lab schema` prints exactly the committed schema.

#[test]
fn lab_schema_prints_the_committed_schema() {
    let out = crate::util::lab().arg("schema").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/lab-machine.schema.json")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}
