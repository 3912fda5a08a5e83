//! The host's agent service: an HTTP health endpoint and a TCP echo service.
//!
//! GET /health answers what /run/lab-test/health-status says (a status code,
//! default 200), or never answers when it says `hang`; the activation of a
//! test system writes that file. Port 5432 echoes what it receives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use lab_e2e::layout;

/// How long a `hang` health answer stalls (bounded; far past any check timeout).
const HANG: Duration = Duration::from_secs(600);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves both ports until killed.
pub fn run() -> i32 {
    let http = TcpListener::bind(("0.0.0.0", layout::HTTP_PORT));
    let tcp = TcpListener::bind(("0.0.0.0", layout::TCP_PORT));
    let (http, tcp) = match (http, tcp) {
        (Ok(h), Ok(t)) => (h, t),
        (h, t) => {
            eprintln!("serve: bind: http {:?}, tcp {:?}", h.err(), t.err());
            return 1;
        }
    };
    std::thread::spawn(move || accept(tcp, echo));
    accept(http, health);
    0
}

fn accept(listener: TcpListener, handler: fn(TcpStream)) {
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            handler(stream);
        });
    }
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn health(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Skip the headers; nothing in them matters here.
    for _ in 0..100 {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (code, body) = if path == "/health" || path.starts_with("/health?") {
        let status = std::fs::read_to_string(layout::HEALTH_STATUS).unwrap_or_else(|_| "200".into());
        let status = status.trim();
        if status == "hang" {
            std::thread::sleep(HANG);
            return;
        }
        (status.parse::<u16>().unwrap_or(500), format!("health {status}\n"))
    } else {
        (404, "not found\n".to_string())
    };
    let reason = match code {
        200..=299 => "OK",
        404 => "Not Found",
        _ => "Status",
    };
    let _ = writer.write_all(format!("HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
}
