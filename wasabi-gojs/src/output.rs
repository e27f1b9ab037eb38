//! [`Output`]: where a guest's standard output and error go.

use std::io::Write;

/// Where a guest's standard output or error goes.
pub type OutputSink = Box<dyn Write + Send>;

/// The guest's two output streams.
pub(crate) struct Output {
    pub(crate) stdout: OutputSink,
    pub(crate) stderr: OutputSink,
}

impl Output {
    /// Flushes both.
    pub(crate) fn flush(&mut self) {
        let _ = self.stdout.flush();
        let _ = self.stderr.flush();
    }
}
