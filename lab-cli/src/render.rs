//! Plain-text rendering helpers shared by the commands.

/// Renders rows as a left-aligned table with a header, columns separated by
/// two spaces, no trailing spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Cells come from the fleet: control characters are shown escaped so a
    // name cannot split a row or steer the terminal.
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| lab_core::printable::printable(c).into_owned()).collect()).collect();
    let rows = rows.as_slice();
    // Columns are as wide as their cells look on a terminal: a CJK
    // character or an emoji takes two columns, a combining mark none.
    let width = |cell: &str| unicode_width::UnicodeWidthStr::width(cell);
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(widths[i] - width(cell)));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Prints `value` as pretty JSON with a trailing newline.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::out::println(serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// A value's word in the JSON contract (e.g. "blue-green"), for tables.
pub fn word(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A list as one cell: comma-separated, `-` when empty.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

/// Prints every host that failed to evaluate on stderr; the exit code says
/// whether the fleet is clean (0) or not (1).
pub fn failures(evaluation: &lab_core::eval::Evaluation) -> crate::exit::Exit {
    for failure in &evaluation.failures {
        eprintln!("error: {failure}");
    }
    crate::exit::Exit::clean_if(evaluation.is_clean())
}
