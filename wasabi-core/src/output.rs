//! Tenant output: each tenant's stdout and stderr, cut into lines and
//! written with the tenant's name, as plain text (`blog | a line`) or as JSON
//! lines (`{"tenant":"blog","stream":"stdout","line":"a line"}`).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// How tenant output lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `name | line`.
    #[default]
    Text,
    /// One JSON object a line: `tenant`, `stream`, `line`.
    Json,
}

/// Which of a tenant's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (and Wasabi's own messages about the tenant).
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Where tagged lines go, shared by every tenant.
pub type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// The longest line kept whole; a guest that never writes a newline is cut
/// into lines of this size rather than buffered without bound.
const MAX_LINE: usize = 64 << 10;

/// A tenant's stream, as a [`Write`] for the guest's output sink: bytes are
/// buffered to the end of each line, then written tagged to `dest`.
///
/// ```
/// use std::io::Write;
/// use std::sync::{Arc, Mutex};
/// use wasabi_core::{LogFormat, Stream, TenantOutput};
///
/// let dest: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(Box::new(Vec::new())));
/// let mut out = TenantOutput::new("blog", Stream::Stdout, LogFormat::Text, dest);
/// out.write_all(b"hello\npartial")?;
/// drop(out); // flushes the partial line
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TenantOutput {
    tenant: Arc<str>,
    stream: Stream,
    format: LogFormat,
    partial: Vec<u8>,
    dest: SharedWriter,
}

impl TenantOutput {
    /// Output of `stream` of tenant `tenant`, written to `dest`.
    pub fn new(
        tenant: impl Into<Arc<str>>,
        stream: Stream,
        format: LogFormat,
        dest: SharedWriter,
    ) -> TenantOutput {
        TenantOutput {
            tenant: tenant.into(),
            stream,
            format,
            partial: Vec::new(),
            dest,
        }
    }

    /// Writes one whole line (without its newline), tagged.
    pub fn line(&self, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let formatted = match self.format {
            LogFormat::Text => format!("{} | {text}\n", self.tenant),
            LogFormat::Json => {
                let record = serde_json::json!({
                    "tenant": &*self.tenant,
                    "stream": self.stream.name(),
                    "line": text,
                });
                format!("{record}\n")
            }
        };
        let mut dest = self.dest.lock().unwrap_or_else(|e| e.into_inner());
        dest.write_all(formatted.as_bytes())?;
        dest.flush()
    }
}

impl Write for TenantOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|b| *b == b'\n') {
            self.line(&self.partial[start..start + end])?;
            start += end + 1;
        }
        self.partial.drain(..start);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            self.line(&self.partial)?;
            self.partial = rest;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TenantOutput {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let _ = self.line(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: LogFormat, writes: &[&[u8]]) -> String {
        let sink = Captured::default();
        let dest: SharedWriter = Arc::new(Mutex::new(Box::new(sink.clone())));
        let mut out = TenantOutput::new("blog", Stream::Stderr, format, dest);
        for w in writes {
            out.write_all(w).unwrap();
        }
        drop(out);
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_tagged_whole_however_they_arrive() {
        assert_eq!(
            capture(LogFormat::Text, &[b"one\ntw", b"o\n", b"three"]),
            "blog | one\nblog | two\nblog | three\n"
        );
        assert_eq!(
            capture(LogFormat::Json, &[b"say \"hi\"\n"]),
            "{\"line\":\"say \\\"hi\\\"\",\"stream\":\"stderr\",\"tenant\":\"blog\"}\n"
        );
    }

    #[test]
    fn endless_lines_are_cut() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let text = capture(LogFormat::Text, &[&long]);
        assert_eq!(text.lines().count(), 3);
    }
}
