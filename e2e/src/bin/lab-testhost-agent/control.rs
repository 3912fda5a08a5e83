//! The init's control socket: one request line, one answer line.
//!
//! Requests: `reboot`, `start UNIT`, `stop UNIT`, `restart UNIT`,
//! `is-active UNIT`. Answers start with `ok` or `err`, then free text.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::Host;

/// Sends one request to the host's init and returns its answer line.
pub fn request(host: &Host, line: &str) -> Result<String, String> {
    let path = host.dir.init_socket();
    let mut stream =
        UnixStream::connect(&path).map_err(|e| format!("init is not answering ({}): {e}", path.display()))?;
    // A rebooting init answers nothing; the caller must not hang on it.
    stream.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    stream.write_all(format!("{line}\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(|e| format!("no answer from init: {e}"))?;
    Ok(answer.trim_end().to_string())
}
