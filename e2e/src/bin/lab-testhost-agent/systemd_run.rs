//! The `systemd-run` stand-in: transient units that outlive the session.
//!
//! A unit is a detached runner process (its own session, so it survives the
//! ssh connection that started it) that runs the command with a clean
//! environment (systemd's default PATH plus `-E` variables), stdin from
//! /dev/null and output to files in /run/lab-test/units/NAME. Supported:
//! `--unit NAME`, `--wait` (follow the unit and exit with its exit code),
//! `--pipe`/`-P` (with `--wait`: relay its stdout and stderr; stdin is not
//! forwarded), `--collect`/`-G` (a failed unit is unloaded, so its name can be
//! reused), `--quiet`/`-q`, `--no-ask-password`, `--no-block`,
//! `--service-type=…`, `--description …`, `--timer-property …` and `-p/--property …` (accepted,
//! ignored), `-E/--setenv K=V`, `--on-active=SPAN` (a timer: the command
//! runs SPAN later unless `systemctl stop NAME.timer` or `systemctl stop
//! NAME` cancels it first; SPAN is seconds, or with `ms`/`s`/`min`).
//! Anything else (`--pty`, `--scope`, `--user`, …) is refused.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_e2e::hostlog::now_us;
use lab_e2e::layout;

use crate::{procs, Host};

/// Longest `--wait` follows a unit (far beyond any test).
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Options {
    unit: Option<String>,
    wait: bool,
    pipe: bool,
    collect: bool,
    quiet: bool,
    on_active_ms: Option<u64>,
    env: Vec<String>,
    command: Vec<String>,
}

fn parse_span(span: &str) -> Option<u64> {
    let span = span.trim();
    let (number, scale) = if let Some(n) = span.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = span.strip_suffix("min") {
        (n, 60_000.0)
    } else if let Some(n) = span.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (span, 1000.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    (value >= 0.0).then_some((value * scale) as u64)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    // The value of an option given as `--opt=V` or `--opt V`.
    let value = |i: &mut usize, arg: &str, name: &str| -> Result<String, String> {
        if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Ok(v.to_string());
        }
        *i += 1;
        args.get(*i).cloned().ok_or_else(|| format!("option {name} needs a value"))
    };
    while i < args.len() {
        let arg = args[i].as_str();
        let name = arg.split('=').next().unwrap_or(arg);
        match name {
            "--" => {
                o.command = args[i + 1..].to_vec();
                break;
            }
            _ if !arg.starts_with('-') => {
                o.command = args[i..].to_vec();
                break;
            }
            "--unit" | "-u" => o.unit = Some(value(&mut i, arg, name)?),
            "--wait" => o.wait = true,
            "--pipe" | "-P" => o.pipe = true,
            "--collect" | "-G" => o.collect = true,
            "--quiet" | "-q" => o.quiet = true,
            "--no-ask-password" | "--no-block" => {}
            "--service-type" | "--description" | "--property" | "-p" | "--timer-property" => {
                value(&mut i, arg, name)?;
            }
            "--setenv" | "-E" => o.env.push(value(&mut i, arg, name)?),
            "--on-active" => {
                let span = value(&mut i, arg, name)?;
                o.on_active_ms = Some(parse_span(&span).ok_or_else(|| format!("bad time span {span:?}"))?);
            }
            _ => return Err(format!("option {arg} is not supported by the lab test host")),
        }
        i += 1;
    }
    if o.command.is_empty() {
        return Err("Command line to execute required.".into());
    }
    Ok(o)
}

/// The unit's base name: `foo` for `foo`, `foo.service` and `foo.timer`.
fn base(unit: &str) -> &str {
    unit.strip_suffix(".service").or_else(|| unit.strip_suffix(".timer")).unwrap_or(unit)
}

fn unit_dir(base: &str) -> PathBuf {
    Path::new(layout::UNITS).join(base)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default().trim().to_string()
}

/// `waiting` (timer armed), `running`, `exited`, `cancelled`, `stopped`,
/// or `gone` (its runner died without finishing); None when never started.
fn phase(base: &str) -> Option<(String, i32)> {
    let dir = unit_dir(base);
    if !dir.is_dir() {
        return None;
    }
    let phase = read(&dir, "phase");
    let pid: i32 = read(&dir, "pid").parse().unwrap_or(0);
    let live = matches!(phase.as_str(), "waiting" | "running");
    if live && !procs::alive(pid) {
        return Some(("gone".into(), pid));
    }
    Some((phase, pid))
}

/// systemctl's `is-active` word for a transient unit or timer.
pub fn unit_state(unit: &str) -> &'static str {
    let timer = unit.ends_with(".timer");
    match phase(base(unit)).map(|(p, _)| p) {
        Some(p) if timer && p == "waiting" => "active",
        Some(p) if !timer && p == "running" => "active",
        Some(p) if !timer && (p == "gone" || (p == "exited" && read(&unit_dir(base(unit)), "exit") != "0")) => "failed",
        _ => "inactive",
    }
}

/// `systemctl stop UNIT` for a transient unit: cancels an armed timer or
/// kills a running unit (its whole process group). False if not loaded.
pub fn stop(host: &Host, unit: &str) -> bool {
    let base = base(unit);
    let Some((phase, pid)) = phase(base) else { return false };
    let next = match phase.as_str() {
        "waiting" => "cancelled",
        "running" if !unit.ends_with(".timer") => "stopped",
        _ => return true,
    };
    procs::signal(-pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while procs::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    procs::signal(-pid, libc::SIGKILL);
    let _ = std::fs::write(unit_dir(base).join("phase"), next);
    let event = if next == "cancelled" { "timer-cancelled" } else { "unit-stopped" };
    host.log(event, &[("unit", base), ("requested-as", unit)]);
    true
}

/// `systemd-run ARGS…`.
pub fn run(host: &Host, args: &[String]) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("systemd-run: {e}");
            return 1;
        }
    };
    let name = o.unit.clone().unwrap_or_else(|| format!("run-u{}", now_us()));
    let name = base(&name).to_string();
    let dir = unit_dir(&name);
    if let Some((phase, _)) = phase(&name) {
        let failed_kept = !matches!(read(&dir, "collect").as_str(), "yes") && unit_state(&name) == "failed";
        if phase == "waiting" || phase == "running" || failed_kept {
            eprintln!("Failed to start transient service unit: Unit {name}.service was already loaded or has a fragment file.");
            return 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let setup = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join("argv"), o.command.join("\0")))
        .and_then(|_| std::fs::write(dir.join("env"), o.env.join("\0")))
        .and_then(|_| {
            std::fs::write(dir.join("on-active-ms"), o.on_active_ms.map(|m| m.to_string()).unwrap_or_default())
        })
        .and_then(|_| std::fs::write(dir.join("collect"), if o.collect { "yes" } else { "no" }))
        .and_then(|_| std::fs::write(dir.join("phase"), if o.on_active_ms.is_some() { "waiting" } else { "running" }));
    if let Err(e) = setup {
        eprintln!("systemd-run: {}: {e}", dir.display());
        return 1;
    }
    let on_active = o.on_active_ms.map(|m| format!("{}", m as f64 / 1000.0)).unwrap_or_default();
    host.log(
        "systemd-run",
        &[
            ("unit", &name),
            ("wait", if o.wait { "yes" } else { "no" }),
            ("on-active", &on_active),
            ("argv", &o.command.join(" ")),
        ],
    );
    let mut runner = Command::new(std::env::current_exe().unwrap_or_else(|_| "lab-testhost-agent".into()));
    runner
        .arg("tool")
        .arg(&host.dir.root)
        .arg("run-unit")
        .arg(&name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid(2) is async-signal-safe; a new session detaches the
    // unit from the ssh session, so losing the connection does not kill it.
    unsafe {
        runner.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = match runner.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("systemd-run: {e}");
            return 1;
        }
    };
    let _ = std::fs::write(dir.join("pid"), child.id().to_string());
    if o.on_active_ms.is_some() {
        host.log("timer-armed", &[("unit", &name), ("seconds", &on_active)]);
        if !o.quiet {
            eprintln!("Running timer as unit: {name}.timer\nWill run service as unit: {name}.service");
        }
        return 0;
    }
    if !o.quiet {
        eprintln!("Running as unit: {name}.service");
    }
    if !o.wait {
        return 0;
    }
    follow(&dir, child.id() as i32, o.pipe, o.quiet)
}

/// Follows a unit until it ends, relaying its output (with `--pipe`), and
/// returns its exit code.
fn follow(dir: &Path, pid: i32, pipe: bool, quiet: bool) -> i32 {
    let (mut out_pos, mut err_pos) = (0u64, 0u64);
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let exit = read(dir, "exit");
        let ended = !exit.is_empty() || !procs::alive(pid) || Instant::now() > deadline;
        if pipe {
            out_pos = relay(&dir.join("stdout"), out_pos, &mut std::io::stdout());
            err_pos = relay(&dir.join("stderr"), err_pos, &mut std::io::stderr());
        }
        if ended {
            // The exit file may land just after the runner dies; read again.
            let code: i32 = read(dir, "exit").parse().unwrap_or(1);
            if !quiet {
                eprintln!("Finished with result: {}", if code == 0 { "success" } else { "exit-code" });
            }
            return code;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn relay(path: &Path, from: u64, to: &mut dyn Write) -> u64 {
    let Ok(mut file) = std::fs::File::open(path) else { return from };
    if file.seek(SeekFrom::Start(from)).is_err() {
        return from;
    }
    let mut buf = Vec::new();
    let n = file.read_to_end(&mut buf).unwrap_or(0);
    if to.write_all(&buf).and_then(|_| to.flush()).is_err() {
        // The session is gone; the unit carries on regardless.
    }
    from + n as u64
}

/// `run-unit NAME`: the detached runner of a unit (started by `run`).
pub fn run_unit(host: &Host, args: &[String]) -> i32 {
    let [name] = args else { return 2 };
    let dir = unit_dir(name);
    let split = |s: String| -> Vec<String> { s.split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect() };
    // Empty arguments are arguments (as for the real systemd-run): only an
    // empty file is an empty argv.
    let argv: Vec<String> = match std::fs::read_to_string(dir.join("argv")).unwrap_or_default() {
        s if s.is_empty() => Vec::new(),
        s => s.split('\0').map(str::to_string).collect(),
    };
    let env = split(std::fs::read_to_string(dir.join("env")).unwrap_or_default());
    if let Ok(ms) = read(&dir, "on-active-ms").parse::<u64>() {
        std::thread::sleep(Duration::from_millis(ms));
        host.log("timer-fired", &[("unit", name)]);
        let _ = std::fs::write(dir.join("phase"), "running");
    }
    let Some((program, rest)) = argv.split_first() else { return 1 };
    let mut cmd = Command::new(program);
    cmd.args(rest).env_clear().env("PATH", layout::UNIT_PATH).current_dir("/").stdin(Stdio::null());
    for pair in &env {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        cmd.env(k, v);
    }
    let open = |f: &str| std::fs::File::create(dir.join(f)).map(Stdio::from).unwrap_or_else(|_| Stdio::null());
    cmd.stdout(open("stdout")).stderr(open("stderr"));
    host.log("unit-start", &[("unit", name), ("argv", &argv.join(" "))]);
    let code = match cmd.status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(e) => {
            let _ = std::fs::write(dir.join("stderr"), format!("{program}: {e}\n"));
            203 // systemd's EXIT_EXEC
        }
    };
    let tmp = dir.join("exit.tmp");
    let _ = std::fs::write(&tmp, code.to_string()).and_then(|_| std::fs::rename(&tmp, dir.join("exit")));
    let _ = std::fs::write(dir.join("phase"), "exited");
    host.log("unit-exit", &[("unit", name), ("code", &code.to_string())]);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn nixos_rebuild_and_watchdog_options_parse() {
        let o = parse(&args("--unit u --wait --pipe --collect --quiet --no-ask-password --service-type=exec -E A=1 --setenv=B=2 -p X=y --property Z=w -- /bin/sh -c x")).unwrap();
        assert_eq!((o.unit.as_deref(), o.wait, o.pipe, o.collect, o.quiet), (Some("u"), true, true, true, true));
        assert_eq!(o.env, ["A=1", "B=2"]);
        assert_eq!(o.command, ["/bin/sh", "-c", "x"]);
        let o = parse(&args("--on-active=1.5 --unit=r true")).unwrap();
        assert_eq!((o.on_active_ms, o.unit.as_deref(), o.command.len()), (Some(1500), Some("r"), 1));
        assert!(parse(&args("--pty true")).is_err());
        assert!(parse(&args("--wait")).is_err());
        assert_eq!(
            [parse_span("2"), parse_span("250ms"), parse_span("1min"), parse_span("x")],
            [Some(2000), Some(250), Some(60_000), None]
        );
        assert_eq!(base("a.timer"), "a");
    }
}
