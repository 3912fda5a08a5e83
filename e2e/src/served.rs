//! `lab serve` started by a test: the process (killed when dropped), the URL
//! it said it listens on, and what it printed on stderr, for assertion
//! messages.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A running `lab serve`.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `cmd` (a `lab … serve --port 0 …` command) and waits, at most
    /// `limit`, until it says where it listens.
    pub fn start(mut cmd: Command, limit: Duration) -> Served {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("lab serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let kept = log.clone();
        // Read stderr to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                kept.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let url = match rx.recv_timeout(limit) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("lab serve did not listen within {limit:?}: {}", log.lock().unwrap());
            }
        };
        Served { child, url, log }
    }

    /// What it printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
