//! Everything `lab` prints on stdout goes through here.
//!
//! Rust ignores SIGPIPE, so when the reader of a pipe goes away (`lab
//! machines --json | head -1`) a write fails with `BrokenPipe`, and
//! `println!` turns that into a panic (exit 101). Here the failure becomes
//! an error carrying [`StdoutClosed`], which `main` ends quietly with exit 0,
//! as ripgrep does: the reader asked for no more, nothing went wrong.

use std::fmt;
use std::io::{self, ErrorKind, Write};

/// Marks the I/O error of a write to a stdout whose reader has gone.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct StdoutClosed;

/// The process's stdout, flushed after every write so a closed pipe is
/// seen at the write that hit it (not in a flush at exit, whose error
/// would be lost).
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = io::stdout().lock();
        out.write_all(buf).and_then(|()| out.flush()).map_err(mark)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush().map_err(mark)
    }
}

/// A broken pipe becomes an error holding [`StdoutClosed`]; any other
/// error stays as it is.
fn mark(e: io::Error) -> io::Error {
    if e.kind() == ErrorKind::BrokenPipe {
        io::Error::new(ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// Writes `text` to stdout.
pub fn print(text: impl fmt::Display) -> io::Result<()> {
    write!(Stdout, "{text}")
}

/// Writes `text` and a newline to stdout.
pub fn println(text: impl fmt::Display) -> io::Result<()> {
    writeln!(Stdout, "{text}")
}

/// Writes raw bytes to stdout (generated completion scripts, man pages).
pub fn print_bytes(bytes: &[u8]) -> io::Result<()> {
    Stdout.write_all(bytes)
}

/// True when `error` came from writing to a stdout whose reader is gone.
pub fn is_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}
