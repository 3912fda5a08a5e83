//! Smaller things of issue 16: wide characters (CJK, emoji) keep the
//! `machines` table aligned, and `graph --json` is `graph --format json`.

use std::path::Path;
use std::process::Output;

use unicode_width::UnicodeWidthStr;

fn lab(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    crate::util::lab().args(args).env("XDG_CACHE_HOME", dir.path()).output().unwrap()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/example.json").display().to_string()
}

#[test]
fn wide_characters_do_not_misalign_the_machines_table() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = serde_json::json!({
        "東京-web": {"role": "ウェブ", "rebootOrder": 1, "groups": ["前線"], "targetHost": "tokyo.example"},
        "rocket": {"role": "🚀launch", "rebootOrder": 2, "targetHost": "rocket.example"},
        "plain": {"role": "db", "rebootOrder": 3, "targetHost": "plain.example"},
        "café": {"role": "e\u{301}spresso", "rebootOrder": 4, "targetHost": "cafe.example"}
    });
    let path = dir.path().join("fleet.json");
    std::fs::write(&path, fleet.to_string()).unwrap();
    let out = lab(&["--json-file", path.to_str().unwrap(), "machines"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    // Every column starts at the same terminal column on every line: the
    // display width of what comes before the column's header word.
    let header = lines[0];
    for column in ["ROLE", "GROUPS", "REBOOTORDER", "TARGET"] {
        let at = header.find(column).unwrap();
        let want = header[..at].width();
        for line in &lines[1..] {
            // The cell of this column: the text after the previous columns,
            // found by walking display columns.
            let mut seen = 0;
            let byte = line
                .char_indices()
                .find(|(i, _)| {
                    seen = line[..*i].width();
                    seen >= want
                })
                .map(|(i, _)| i)
                .unwrap_or(line.len());
            assert_eq!(seen, want, "{column} does not start at column {want} in {line:?}\n{text}");
            assert!(line[..byte].ends_with("  "), "two spaces before {column} in {line:?}\n{text}");
            assert!(!line[byte..].starts_with(' '), "{column} starts right there in {line:?}\n{text}");
        }
    }
}

#[test]
fn graph_json_is_graph_format_json() {
    let json = lab(&["--json-file", &example(), "graph", "--json"]);
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let format = lab(&["--json-file", &example(), "graph", "--format", "json"]);
    assert_eq!(json.stdout, format.stdout);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(value.is_object(), "{value}");
    // Saying both is a usage error (exit 2), whichever format is named.
    let both = lab(&["--json-file", &example(), "graph", "--json", "--format", "dot"]);
    assert_eq!(both.status.code(), Some(2));
}
