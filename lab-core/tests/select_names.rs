//! `--on` can select every machine by its exact name (`name:NAME`), also
//! names that look like a group (`@x`), a role (`role:y`), a list (`a,b`)
//! or a glob (`web*1`); and globs are real globs (`dns[12]`).

use std::collections::BTreeMap;

use lab_core::graph::{Expand, Fleet, SelectError, Selector};
use lab_core::metadata::parse_machine;
use serde_json::json;

fn fleet() -> Fleet {
    let machines: BTreeMap<_, _> =
        [("@x", "web"), ("role:y", "web"), ("a,b", "db"), ("web*1", "web"), ("web-1", "web"), ("dns1", "dns"), ("dns2", "dns"), ("dns3", "dns"), ("a\\b", "db")]
            .into_iter()
            .enumerate()
            .map(|(i, (name, role))| {
                let metadata = json!({"role": role, "rebootOrder": i, "groups": [format!("g-{role}")], "targetHost": format!("h{i}.example")});
                (name.to_string(), parse_machine(name, metadata, None).unwrap())
            })
            .collect();
    Fleet::from_map(&machines).unwrap()
}

fn select(on: &str) -> Result<Vec<String>, SelectError> {
    let selector: Selector = on.parse()?;
    let mut names: Vec<String> =
        fleet().select(&selector, Expand::default())?.machines().iter().map(|m| m.name.clone()).collect();
    names.sort();
    Ok(names)
}

#[test]
fn name_selects_exactly_one_machine_whatever_its_name_looks_like() {
    assert_eq!(select("name:@x").unwrap(), ["@x"]);
    assert_eq!(select("name:role:y").unwrap(), ["role:y"]);
    assert_eq!(select("name:a\\,b").unwrap(), ["a,b"]);
    assert_eq!(select("name:web*1").unwrap(), ["web*1"], "no glob in name:");
    assert_eq!(select("name:a\\\\b").unwrap(), ["a\\b"]);
    assert_eq!(select("name:dns1, name:@x").unwrap(), ["@x", "dns1"]);
    // Without name:, `@x` is a group and `role:y` a role.
    assert!(matches!(select("@x"), Err(SelectError::NothingSelected { .. })));
    assert!(matches!(select("role:y"), Err(SelectError::NothingSelected { .. })));
    // A backslash also makes a prefix or a star literal in plain terms.
    assert_eq!(select("\\@x").unwrap(), ["@x"]);
    assert_eq!(select("web\\*1").unwrap(), ["web*1"]);
    assert_eq!(select("web*1").unwrap(), ["web*1", "web-1"], "a glob");
}

#[test]
fn globs_are_real_globs() {
    assert_eq!(select("dns[12]").unwrap(), ["dns1", "dns2"]);
    assert_eq!(select("dns[!1]").unwrap(), ["dns2", "dns3"]);
    assert_eq!(select("dns?").unwrap(), ["dns1", "dns2", "dns3"]);
    assert_eq!(select("@g-d[bn]*").unwrap(), ["a,b", "a\\b", "dns1", "dns2", "dns3"]);
    assert_eq!(select("role:d?s").unwrap(), ["dns1", "dns2", "dns3"]);
    assert_eq!(select("*").unwrap().len(), 9);
    assert!(matches!(select("dns[4-9]"), Err(SelectError::NothingSelected { .. })));
}

#[test]
fn bad_globs_and_empty_names_say_how_to_write_them() {
    let err = select("dns[1").unwrap_err();
    assert!(matches!(err, SelectError::BadGlob { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("--on \"dns[1\": `dns[1` is not a valid glob"), "{text}");
    assert!(text.contains("name:NAME"), "{text}");
    assert_eq!(
        select("name:").unwrap_err().to_string(),
        "--on \"name:\": the name after `name:` is empty; give machine names, @group or role:NAME, separated by commas"
    );
    let err = select("name:dns9").unwrap_err().to_string();
    assert!(err.contains("`name:dns9` selects no machine") && err.contains("name:dns1"), "{err}");
}
