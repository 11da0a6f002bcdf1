//! The run's log: the `log` interface and the guest's stdout/stderr, capped in bytes.
//!
//! Output past the cap is counted and dropped, never refused: a guest whose `println!` failed
//! would panic, and a chatty transform should lose log lines, not its run.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use sluice_text::{GuestText, cut};

/// Longest single message kept from the `log` interface; the rest is cut with a marker.
pub const MAX_MESSAGE_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    /// `log`, `stdout` or `stderr`.
    pub source: &'static str,
    /// The guest's text: displays with control characters escaped.
    pub message: GuestText,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<LogLine>,
    kept: u64,
    dropped: u64,
    // Partial lines written to stdout/stderr, completed by a later newline.
    stdout: PartialLine,
    stderr: PartialLine,
}

/// A line being written to stdout or stderr: its first [`MAX_MESSAGE_BYTES`], and how many
/// bytes past them were discarded, so a line of any length costs the host 4 KiB.
#[derive(Debug, Default)]
struct PartialLine {
    head: Vec<u8>,
    discarded: u64,
}

impl PartialLine {
    fn add(&mut self, bytes: &[u8]) {
        let room = MAX_MESSAGE_BYTES.saturating_sub(self.head.len());
        let (kept, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(kept);
        self.discarded += rest.len() as u64;
    }

    /// The line as a message, with the cut noted, and the bytes cut; `None` when nothing was
    /// written.
    fn take(&mut self) -> Option<(String, u64)> {
        if self.head.is_empty() && self.discarded == 0 {
            return None;
        }
        let discarded = self.discarded;
        let text = String::from_utf8_lossy(&self.head).into_owned();
        let message = if self.discarded == 0 {
            text
        } else {
            let total = self.head.len() as u64 + self.discarded;
            format!("{text}…[cut: {total} bytes in all]")
        };
        *self = PartialLine::default();
        Some((message, discarded))
    }
}

/// Shared between the store (for `log`) and the stdout/stderr pipes.
#[derive(Clone, Debug)]
pub struct LogBuffer {
    cap: u64,
    state: Arc<Mutex<LogState>>,
}

impl LogBuffer {
    pub fn new(cap: u64) -> LogBuffer {
        LogBuffer {
            cap,
            state: Arc::default(),
        }
    }

    /// Keeps `message` if the cap allows, cutting it to [`MAX_MESSAGE_BYTES`]; what is cut or
    /// not kept counts as dropped.
    pub fn push(&self, level: LogLevel, source: &'static str, message: &str) {
        let discarded = message.len().saturating_sub(MAX_MESSAGE_BYTES) as u64;
        self.keep(
            level,
            source,
            cut(message, MAX_MESSAGE_BYTES).into_owned(),
            discarded,
        );
    }

    /// Keeps a message already cut to size (`discarded` bytes cut from it), if the cap allows.
    fn keep(&self, level: LogLevel, source: &'static str, message: String, discarded: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.dropped += discarded;
        let size = message.len() as u64;
        if state.kept + size > self.cap {
            state.dropped += size;
            return;
        }
        state.kept += size;
        state.lines.push(LogLine {
            level,
            source,
            message: GuestText::new(message),
        });
    }

    fn write_stream(&self, source: &'static str, bytes: &[u8]) {
        let complete: Vec<(String, u64)> = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let line = if source == "stderr" {
                &mut state.stderr
            } else {
                &mut state.stdout
            };
            let mut lines = Vec::new();
            let mut rest = bytes;
            while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
                line.add(&rest[..pos]);
                lines.push(line.take().unwrap_or_default());
                rest = &rest[pos + 1..];
            }
            line.add(rest);
            lines
        };
        for (message, discarded) in complete {
            self.keep(level_of(source), source, message, discarded);
        }
    }

    /// Flushes unterminated stdout/stderr lines, then returns everything kept and the number of
    /// bytes dropped.
    pub fn finish(&self) -> (Vec<LogLine>, u64) {
        let (out, err) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (state.stdout.take(), state.stderr.take())
        };
        if let Some((out, discarded)) = out {
            self.keep(level_of("stdout"), "stdout", out, discarded);
        }
        if let Some((err, discarded)) = err {
            self.keep(level_of("stderr"), "stderr", err, discarded);
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut state.lines), state.dropped)
    }

    /// A stdout or stderr for the guest that writes into this buffer.
    pub fn pipe(&self, source: &'static str) -> LogPipe {
        LogPipe {
            buffer: self.clone(),
            source,
        }
    }
}

/// Lines on stderr are warnings; on stdout, information.
fn level_of(source: &str) -> LogLevel {
    if source == "stderr" {
        LogLevel::Warn
    } else {
        LogLevel::Info
    }
}

/// The guest's stdout or stderr: accepts every write, keeps what the cap allows.
#[derive(Clone)]
pub struct LogPipe {
    buffer: LogBuffer,
    source: &'static str,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.buffer.write_stream(self.source, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.buffer.write_stream(self.source, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_output_is_split_into_lines_and_capped() {
        let log = LogBuffer::new(10);
        log.write_stream("stdout", b"hello\nwor");
        log.write_stream("stdout", b"ld\nthis line is too long\n");
        let (lines, dropped) = log.finish();
        let text: Vec<&str> = lines.iter().map(|l| l.message.as_raw()).collect();
        assert_eq!(text, ["hello", "world"]);
        assert_eq!(dropped, "this line is too long".len() as u64);
    }

    #[test]
    fn long_message_is_cut_at_a_char_boundary() {
        let log = LogBuffer::new(1 << 20);
        log.push(LogLevel::Info, "log", &"é".repeat(MAX_MESSAGE_BYTES));
        let (lines, _) = log.finish();
        let message = lines[0].message.as_raw();
        assert!(message.ends_with("…[cut: 8192 bytes in all]"), "{message}");
        assert!(message.len() <= MAX_MESSAGE_BYTES + 32);
    }

    #[test]
    fn a_streamed_line_of_any_length_keeps_its_head_and_its_length() {
        let log = LogBuffer::new(1 << 20);
        for _ in 0..100 {
            log.write_stream("stdout", &[b'x'; 64 << 10]);
        }
        log.write_stream("stdout", b"\nnext\n");
        let (lines, _) = log.finish();
        assert_eq!(lines.len(), 2);
        let first = lines[0].message.as_raw();
        assert!(first.ends_with("…[cut: 6553600 bytes in all]"), "{first}");
        assert!(first.len() <= MAX_MESSAGE_BYTES + 32);
        assert_eq!(lines[1].message.as_raw(), "next");
    }
}
