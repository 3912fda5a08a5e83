//! `lab completions SHELL` and `lab man`: generated from the same clap
//! definition the parser uses, so they never drift from the real options.

use std::fmt::Write as _;

use anyhow::Result;
use clap_complete::Shell;

use crate::exit::Exit;

/// Prints the completion script for `shell`.
pub fn completions(mut command: clap::Command, shell: Shell) -> Result<Exit> {
    // clap_complete panics when its writer fails: generate into memory,
    // then print through `out`, which handles a closed stdout.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "lab", &mut script);
    crate::out::print_bytes(&script)?;
    Ok(Exit::Success)
}

/// Prints the man page (roff) of `lab`.
pub fn man(command: clap::Command) -> Result<Exit> {
    crate::out::print_bytes(&man_page(command)?)?;
    Ok(Exit::Success)
}

/// The whole man page: one page, `lab(1)`. clap_mangen's own SUBCOMMANDS
/// section points at `lab-sequence(1)`-style pages that are not installed
/// anywhere, so the commands are rendered here, each with its options, and
/// the page gains EXIT STATUS (from the one exit table), ENVIRONMENT and
/// FILES.
pub fn man_page(mut command: clap::Command) -> Result<Vec<u8>> {
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut roff = String::from(".SH COMMANDS\n");
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        commands_entry(&mut roff, sub);
    }
    roff.push_str(&exit_status());
    roff.push_str(ENVIRONMENT);
    roff.push_str(FILES);
    page.extend_from_slice(roff.as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// Text as roff: backslashes and hyphens escaped, characters beyond ASCII
/// as `\[uXXXX]` (troff reads its input as Latin-1 otherwise), and no
/// line starting with a control character.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\e"),
            '-' => escaped.push_str("\\-"),
            c if !c.is_ascii() => escaped.push_str(&format!("\\[u{:04X}]", u32::from(c))),
            c => escaped.push(c),
        }
    }
    let text = escaped;
    text.lines()
        .map(|l| if l.starts_with(['.', '\'']) { format!("\\&{l}") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `.SS lab NAME`, its description and its own options (global ones are
/// in OPTIONS above).
fn commands_entry(roff: &mut String, sub: &clap::Command) {
    let _ = writeln!(roff, ".SS \"lab {}\"", escape(sub.get_name()));
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        let _ = writeln!(roff, "{}", escape(&about.to_string()));
    }
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set()) {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let value = arg.get_value_names().map(|names| names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        let value = value.unwrap_or_else(|| vec![id.to_uppercase()]);
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(long), Some(short)) => format!("\\fB\\-{short}\\fR, \\fB\\-\\-{}\\fR", escape(long)),
            (Some(long), None) => format!("\\fB\\-\\-{}\\fR", escape(long)),
            (None, Some(short)) => format!("\\fB\\-{short}\\fR"),
            (None, None) => format!("\\fI{}\\fR", escape(&value.join(" "))),
        };
        let is_option = arg.get_long().is_some() || arg.get_short().is_some();
        let takes_value = arg.get_action().takes_values();
        let value =
            if is_option && takes_value { format!(" \\fI{}\\fR", escape(&value.join(" "))) } else { String::new() };
        let _ = writeln!(roff, ".TP\n{name}{value}");
        if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
            let _ = writeln!(roff, "{}", escape(&help.to_string()));
        }
        let possible: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
        if !possible.is_empty() && takes_value {
            let _ = writeln!(roff, "[possible values: {}]", escape(&possible.join(", ")));
        }
    }
}

/// EXIT STATUS, from the exit table of `crate::exit` (`exit::HELP`, the
/// text `lab --help` shows), so the page cannot drift from it.
fn exit_status() -> String {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in crate::exit::HELP.lines().skip(1) {
        let trimmed = line.trim_start();
        match trimmed.split_once("  ") {
            Some((code, text)) if code.parse::<u8>().is_ok() => entries.push((code.into(), text.trim().into())),
            _ => {
                if let Some((_, text)) = entries.last_mut() {
                    text.push(' ');
                    text.push_str(trimmed);
                }
            }
        }
    }
    let mut roff = String::from(".SH \"EXIT STATUS\"\nEvery command exits with one of these codes.\n");
    for (code, text) in entries {
        let _ = writeln!(roff, ".TP\n\\fB{code}\\fR\n{}", escape(&text));
    }
    roff
}

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBXDG_STATE_HOME\fR
Where runs keep their locks and journals: \fI$XDG_STATE_HOME/lab\fR (else \fI~/.local/state/lab\fR, else \fI/var/lib/lab\fR); \fB\-\-state\-dir\fR overrides it.
.TP
\fBXDG_CACHE_HOME\fR
Where evaluations are cached: \fI$XDG_CACHE_HOME/lab\fR (else \fI~/.cache/lab\fR).
.TP
\fBHOME\fR
The base of the defaults above when the XDG variables are unset.
.TP
\fBLAB_NOTIFY_CONFIG\fR
A JSON file of notification hooks, as the fleet's lab.notify (\fB\-\-notify\-config\fR overrides it; services.lab\-orchestrator.notify sets it).
.TP
\fBRUST_LOG\fR
Filters what lab logs on stderr (e.g. \fBlab=debug\fR), beyond \fB\-v\fR and \fB\-q\fR.
.TP
\fBNO_COLOR\fR
When set and not empty, no colour on stderr.
.PP
lab runs the user's own \fBnix\fR and \fBssh\fR with their usual configuration (nix.conf, \fI~/.ssh/config\fR, agents), so their variables (\fBNIX_CONFIG\fR, \fBSSH_AUTH_SOCK\fR, ...) apply to them.
"#;

const FILES: &str = r#".SH FILES
.TP
\fIflake.nix\fR
Without \fB\-\-flake\fR, \fB\-\-file\fR, \fB\-\-hosts\-dir\fR or \fB\-\-json\-file\fR, the flake in the current directory; every nixosConfigurations.NAME is a machine, and its \fBlab\fR output holds the fleet's settings.
.TP
\fI$XDG_STATE_HOME/lab/locks/FLEET.lock\fR
The lock a run holds on its fleet (\fBlab unlock \-\-force RUN_ID\fR removes a stuck one).
.TP
\fI$XDG_STATE_HOME/lab/runs/RUN_ID.jsonl\fR
The journal of a run: one checksummed JSON line per step; \fBlab resume\fR continues from it.
.TP
\fI$XDG_CACHE_HOME/lab/\fR
The evaluation cache (\fB\-\-refresh\fR evaluates again).
.TP
\fI/etc/lab\-machine\-metadata.json\fR
Written on each machine by the lab.machine NixOS module: its orchestration metadata.
"#;
