//! `delay MS HOST PORT`: an ssh ProxyCommand that connects to HOST:PORT and
//! holds every chunk, each way, for MS milliseconds before passing it on: a
//! link with that much latency (this kernel has no netem). Order is kept;
//! an end of input on one side is passed on, after the same delay, as a
//! half-close.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest the proxy waits to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the proxy; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let [ms, host, port] = args else {
        eprintln!("usage: lab-testhost-agent delay MS HOST PORT");
        return 2;
    };
    let (Ok(ms), Ok(port)) = (ms.parse::<u64>(), port.parse::<u16>()) else {
        eprintln!("delay: MS and PORT must be numbers");
        return 2;
    };
    let addr = match format!("{host}:{port}").parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("delay: {host}:{port}: {e}");
            return 2;
        }
    };
    let stream = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("delay: connect {addr}: {e}");
            return 1;
        }
    };
    let _ = stream.set_nodelay(true);
    let delay = Duration::from_millis(ms);
    let (Ok(to_host), Ok(from_host)) = (stream.try_clone(), stream.try_clone()) else { return 1 };
    let up = std::thread::spawn(move || {
        pump(std::io::stdin(), delay, |chunk| match chunk {
            Some(bytes) => (&to_host).write_all(bytes),
            None => to_host.shutdown(Shutdown::Write),
        })
    });
    pump(from_host, delay, |chunk| {
        let mut out = std::io::stdout().lock();
        match chunk {
            Some(bytes) => out.write_all(bytes).and_then(|()| out.flush()),
            // ssh reads the end of the proxy's output as the connection closing.
            None => std::process::exit(0),
        }
    });
    let _ = up.join();
    0
}

/// Reads `from` and hands each chunk (then `None` at its end) to `deliver`
/// `delay` after it arrived, in order.
fn pump(
    mut from: impl Read + Send + 'static,
    delay: Duration,
    mut deliver: impl FnMut(Option<&[u8]>) -> std::io::Result<()>,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf).unwrap_or(0);
            let chunk = (n > 0).then(|| buf[..n].to_vec());
            let end = chunk.is_none();
            if tx.send((Instant::now() + delay, chunk)).is_err() || end {
                return;
            }
        }
    });
    for (due, chunk) in rx {
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let end = chunk.is_none();
        if deliver(chunk.as_deref()).is_err() || end {
            return;
        }
    }
}
