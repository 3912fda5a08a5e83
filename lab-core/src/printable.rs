//! Names and values from a fleet shown safely on a terminal.
//!
//! A machine name is any Nix attribute name, so it can hold a newline or an
//! escape sequence that would split a table row or rewrite the user's
//! terminal. Text output passes such values through [`printable`]; JSON
//! output needs nothing (JSON escapes control characters itself).

use std::borrow::Cow;

/// `text` with every control character written as its Rust escape (`\n`,
/// `\t`, `\u{1b}`), so it prints on one line and cannot steer a terminal.
/// Text without control characters is returned as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("web-01"), "web-01");
        assert!(matches!(printable("ünïcødé ✓ \"q\" $(x)"), Cow::Borrowed(_)));
        assert_eq!(printable("new\nline"), "new\\nline");
        assert_eq!(printable("esc\u{1b}[31mred\u{7}"), "esc\\u{1b}[31mred\\u{7}");
        assert_eq!(printable("tab\there\r"), "tab\\there\\r");
    }
}
