//! Process helpers: liveness, signals, and the set of processes that make up
//! this host (everything in its network namespace).

use std::path::PathBuf;

/// True while `pid` exists (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesised command name, is the state.
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends `signal` to a process (`pid > 0`) or a process group (`pid < 0`).
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn netns_of(pid: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// Every process in this host (same network namespace) except this one.
pub fn host_processes() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Some(mine) = netns_of("self") else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && netns_of(&pid.to_string()).as_ref() == Some(&mine))
        .collect()
}

/// Kills every other process of this host, as a machine going down does,
/// and waits (bounded) until they are gone.
pub fn kill_host_processes() {
    for _round in 0..50 {
        let pids: Vec<i32> = host_processes().into_iter().filter(|&p| alive(p)).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
