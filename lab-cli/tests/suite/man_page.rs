//! `lab man`: one page, no references to pages that do not exist, every
//! command with its options, and the EXIT STATUS (the exit table of
//! `lab --help`), ENVIRONMENT and FILES sections.

use std::process::Command;

fn lab(args: &[&str]) -> String {
    let out = crate::util::lab().args(args).output().unwrap();
    assert!(out.status.success(), "lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_man_page_refers_to_no_page_that_does_not_exist() {
    let page = lab(&["man"]);
    // clap_mangen's default lists `lab-sequence(1)` and friends; lab
    // installs one page.
    for line in page.lines() {
        let plain = line.replace("\\-", "-");
        assert!(!(plain.contains("lab-") && plain.contains("(1)")), "a reference to another page: {line}");
    }
    assert!(page.contains(".TH lab 1"));
    for command in ["sequence", "plan", "deploy", "reboot", "orchestrate", "resume", "unlock", "graph", "man"] {
        assert!(page.contains(&format!(".SS \"lab {command}\"")), "no entry for lab {command}");
    }
    // A command's own options are under it.
    let plan = &page[page.find(".SS \"lab plan\"").unwrap()..];
    let plan = &plan[..plan[1..].find(".SS").unwrap()];
    assert!(plan.contains("\\-\\-outside\\-window"), "{plan}");
    assert!(plan.contains("[possible values: reboot, deploy]"), "{plan}");
}

#[test]
fn the_man_page_has_exit_status_environment_and_files() {
    let page = lab(&["man"]);
    let section = |name: &str| {
        let at = page.find(&format!(".SH {name}\n")).unwrap_or_else(|| panic!("no {name} section"));
        let rest = &page[at + 1..];
        rest[..rest.find("\n.SH ").unwrap_or(rest.len())].to_string()
    };
    // The exit table is the one `lab --help` shows.
    let exit = section("\"EXIT STATUS\"");
    let help = lab(&["--help"]);
    for code in 0..=4 {
        assert!(exit.contains(&format!(".TP\n\\fB{code}\\fR\n")), "exit code {code} missing:\n{exit}");
        assert!(help.contains(&format!("\n  {code}  ")), "lab --help lists {code}");
    }
    assert!(
        exit.contains("another run holds the fleet\\[u2019]s lock")
            || exit.contains("another run holds the fleet's lock"),
        "{exit}"
    );
    assert!(
        exit.contains("failed or rolled\\-back steps), also a run refused for any of these"),
        "continuation lines are joined: {exit}"
    );
    let environment = section("ENVIRONMENT");
    for variable in ["XDG_STATE_HOME", "XDG_CACHE_HOME", "LAB_NOTIFY_CONFIG", "RUST_LOG", "NO_COLOR"] {
        assert!(environment.contains(&format!("\\fB{variable}\\fR")), "{variable} missing:\n{environment}");
    }
    let files = section("FILES");
    assert!(files.contains("/locks/FLEET.lock") && files.contains("/runs/RUN_ID.jsonl"), "{files}");
}

/// groff reads the page without a warning (when groff is installed).
#[test]
fn groff_reads_the_page_without_warnings() {
    let page = lab(&["man"]);
    let Ok(mut child) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("groff is not installed; the page's roff is not checked");
        return;
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
}
