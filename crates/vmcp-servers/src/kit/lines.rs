//! Newline-delimited framing for stdio: one message per line, with a size cap.
//!
//! Invariant: memory stays bounded by the cap: an oversized line is skipped as it streams in and
//! reported once as [`Line::TooLong`]. The reader keeps its state in `self`, so `next` is
//! cancel-safe.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The default cap on one message.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One line read from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A non-empty line without its newline (and without a trailing `\r`).
    Text(String),
    /// A line longer than the cap.
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Splits a byte stream into [`Line`]s.
pub struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    buf: Vec<u8>,
    overflow: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self { inner: BufReader::new(reader), max, buf: Vec::new(), overflow: false }
    }

    /// The next non-empty line; `None` at end of stream.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.buf.is_empty() && !self.overflow {
                    return Ok(None);
                }
                return Ok(self.take());
            }
            let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !self.overflow {
                if self.buf.len() + chunk.len() > self.max {
                    self.overflow = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.inner.consume(used);
            if done && let Some(line) = self.take() {
                return Ok(Some(line));
            }
        }
    }

    /// Finish the current line; `None` for a blank one.
    fn take(&mut self) -> Option<Line> {
        if std::mem::take(&mut self.overflow) {
            return Some(Line::TooLong);
        }
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(String::from_utf8(bytes).map_or(Line::NotUtf8, Line::Text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next().await.unwrap() {
            out.push(l);
        }
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.into())
    }

    #[tokio::test]
    async fn splits_lines() {
        let cases: [(&[u8], Vec<Line>); 5] = [
            (b"a\nb\n", vec![text("a"), text("b")]),
            (b"a\r\n\n  \nb", vec![text("a"), text("b")]),
            (b"", vec![]),
            (b"0123456789\nok\n", vec![Line::TooLong, text("ok")]),
            (b"\xff\xfe\nok", vec![Line::NotUtf8, text("ok")]),
        ];
        for (input, want) in cases {
            assert_eq!(lines(input, 8).await, want, "{input:?}");
        }
    }
}
