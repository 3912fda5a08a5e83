//! Quoting argv for a remote POSIX shell.
//!
//! ssh sends one string that the remote login shell parses, so this is the
//! one place in lab where a command line is built as text. Every argument is
//! single-quoted unless it consists only of characters no shell treats
//! specially, so the remote shell sees exactly the argv.

use std::borrow::Cow;

/// Characters that never need quoting in a POSIX shell word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '=' | ':' | '@' | ',' | '+' | '%')
}

/// One argument as a POSIX shell word that expands to exactly `arg`.
///
/// Plain words stay as they are (readable logs); anything else is wrapped in
/// single quotes, with each `'` written as `'\''`. Inside single quotes a
/// POSIX shell interprets nothing, newlines included.
pub fn quote_arg(arg: &str) -> Cow<'_, str> {
    if !arg.is_empty() && arg.chars().all(is_plain) && !arg.starts_with('=') {
        return Cow::Borrowed(arg);
    }
    let mut quoted = String::with_capacity(arg.len() + 2);
    quoted.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    Cow::Owned(quoted)
}

/// An argv as one POSIX shell command line that runs exactly that argv.
pub fn quote_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter().map(|a| quote_arg(a.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_readable() {
        assert_eq!(quote_argv(&["systemctl", "is-active", "nginx.service"]), "systemctl is-active nginx.service");
        assert_eq!(
            quote_arg("/nix/store/abc-system/bin/switch-to-configuration"),
            "/nix/store/abc-system/bin/switch-to-configuration"
        );
    }

    #[test]
    fn special_words_are_single_quoted() {
        assert_eq!(quote_arg(""), "''");
        assert_eq!(quote_arg("a b"), "'a b'");
        assert_eq!(quote_arg("it's"), "'it'\\''s'");
        assert_eq!(quote_arg("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote_arg("a;b"), "'a;b'");
        assert_eq!(quote_arg("line\nbreak"), "'line\nbreak'");
        assert_eq!(quote_arg("~root"), "'~root'");
        assert_eq!(quote_arg("*"), "'*'");
        assert_eq!(quote_arg("=x"), "'=x'");
    }

    /// The real test: a local POSIX shell parses the quoted line back into
    /// the same argv.
    #[test]
    fn sh_reads_back_the_exact_argv() {
        let argv = [
            "printf",
            "%s\\0",
            "",
            "two words",
            "it's",
            "\"double\"",
            "a;b && c | d",
            "$(touch /tmp/lab-quote-pwned) `id` $HOME",
            "line1\nline2",
            "tab\there",
            "back\\slash",
            "ünïcødé ✓",
            "*",
            "-n",
            "'",
            "''",
        ];
        let line = quote_argv(&argv);
        let out = std::process::Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success());
        let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().split_terminator('\0').collect();
        assert_eq!(got, &argv[2..]);
        assert!(!std::path::Path::new("/tmp/lab-quote-pwned").exists());
    }
}
