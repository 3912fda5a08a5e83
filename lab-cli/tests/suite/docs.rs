//! Completions and the man page come from the parser's own definition.

fn lab(args: &[&str]) -> String {
    let out = crate::util::lab().args(args).output().unwrap();
    assert!(out.status.success(), "lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let script = lab(&["completions", shell]);
        for command in ["machines", "sequence", "plan", "health", "check"] {
            assert!(script.contains(command), "{shell} completion lacks {command}");
        }
    }
    let out = crate::util::lab().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn man_page_is_roff_with_the_commands() {
    let page = lab(&["man"]);
    assert!(page.contains(".TH lab 1"));
    assert!(page.contains("sequence"));
}
