//! Where runs keep their state: `$XDG_STATE_HOME/lab` (else
//! `~/.local/state/lab`): a lock per fleet under `locks/`, a journal per run
//! under `runs/`, named by run ids that sort by time.

use std::path::{Path, PathBuf};

/// The state directory of lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    /// The state directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir(path.into())
    }

    /// `$XDG_STATE_HOME/lab`, else `$HOME/.local/state/lab`, else
    /// `/var/lib/lab` (a system service without a home).
    pub fn default_location() -> Self {
        let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(state) = from_env("XDG_STATE_HOME") {
            return StateDir(state.join("lab"));
        }
        if let Some(home) = from_env("HOME") {
            return StateDir(home.join(".local/state/lab"));
        }
        StateDir(PathBuf::from("/var/lib/lab"))
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The lock file of the fleet `fleet_key` names.
    pub fn lock_path(&self, fleet_key: &str) -> PathBuf {
        self.0.join("locks").join(format!("{fleet_key}.lock"))
    }

    /// The journal of run `run_id`.
    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.0.join("runs").join(format!("{run_id}.jsonl"))
    }

    /// Every run id with a journal, oldest first.
    pub fn run_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.0.join("runs")) else { return Vec::new() };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".jsonl")).map(str::to_string))
            .collect();
        ids.sort();
        ids
    }
}

/// A short, stable name for a fleet source (its description hashed), so
/// runs on different fleets do not exclude each other.
pub fn fleet_key(source_description: &str) -> String {
    format!("fleet-{}", &blake3::hash(source_description.as_bytes()).to_hex()[..16])
}

/// A new run id: UTC time to the millisecond, then the pid, so ids sort by
/// start time and two runs never share one (`20250102T030405.678Z-4242`).
pub fn new_run_id() -> String {
    // Two runs started by one process within a millisecond (a test, an FFI
    // caller) must not share an id: the stamp only ever moves forward.
    static LAST_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let previous = LAST_MS
        .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    format!("{}-{}", utc_stamp(now.max(previous + 1)), std::process::id())
}

/// `YYYYMMDDTHHMMSS.mmmZ` for milliseconds since the epoch.
pub fn utc_stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z", rest / 3600, rest / 60 % 60, rest % 60, ms % 1000)
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_and_sort_by_time() {
        assert_eq!(utc_stamp(0), "19700101T000000.000Z");
        assert_eq!(utc_stamp(951_782_400_123), "20000229T000000.123Z");
        assert_eq!(utc_stamp(1_735_787_045_678), "20250102T030405.678Z");
        assert!(utc_stamp(1_000) < utc_stamp(10_000_000_000_000));
    }

    #[test]
    fn paths_and_keys() {
        let state = StateDir::new("/s");
        assert_eq!(state.journal_path("r1"), Path::new("/s/runs/r1.jsonl"));
        assert_eq!(fleet_key("file /a"), fleet_key("file /a"));
        assert_ne!(fleet_key("file /a"), fleet_key("file /b"));
        assert!(state.lock_path(&fleet_key("x")).starts_with("/s/locks"));
    }
}
