//! Newline-delimited JSON framing (MCP stdio), with a hard cap on message size.
//!
//! Invariant: memory per connection is bounded by the cap: an oversized line is discarded as it
//! streams in and reported once as `Frame::TooLarge` (with its first [`HEAD`] bytes, enough to
//! find the id of a well-formed message), and the next line is read normally.

use bytes::{Buf, Bytes, BytesMut};

/// How much of an oversized line is kept, so its sender can be told which message was dropped.
pub const HEAD: usize = 1024;
use tokio_util::codec::Decoder;

/// One frame read from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A non-empty line without its newline (and without a trailing `\r`).
    Line(BytesMut),
    /// A line longer than the cap; `len` counts the bytes seen, `head` holds the first ones.
    TooLarge { len: usize, head: Bytes },
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineCodec {
    max: usize,
    /// Bytes already scanned for a newline in the current line.
    scanned: usize,
    /// Set while skipping the rest of an oversized line: bytes seen, and its head.
    discarding: Option<(usize, Bytes)>,
}

impl LineCodec {
    pub fn new(max: usize) -> Self {
        Self { max, scanned: 0, discarding: None }
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            if let Some((seen, head)) = self.discarding.take() {
                match memchr(b'\n', buf) {
                    Some(i) => {
                        buf.advance(i + 1);
                        return Ok(Some(Frame::TooLarge { len: seen + i, head }));
                    }
                    None => {
                        self.discarding = Some((seen + buf.len(), head));
                        buf.clear();
                        return Ok(None);
                    }
                }
            }
            let newline = memchr(b'\n', &buf[self.scanned..]).map(|i| i + self.scanned);
            match newline {
                Some(i) if i <= self.max => {
                    let mut line = buf.split_to(i + 1);
                    self.scanned = 0;
                    line.truncate(i);
                    if line.last() == Some(&b'\r') {
                        line.truncate(i - 1);
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Ok(Some(Frame::Line(line)));
                }
                Some(i) => {
                    let head = Bytes::copy_from_slice(&buf[..i.min(HEAD)]);
                    buf.advance(i + 1);
                    self.scanned = 0;
                    return Ok(Some(Frame::TooLarge { len: i, head }));
                }
                None if buf.len() > self.max => {
                    let head = Bytes::copy_from_slice(&buf[..buf.len().min(HEAD)]);
                    self.discarding = Some((buf.len(), head));
                    self.scanned = 0;
                    buf.clear();
                }
                None => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if self.discarding.is_some() => {
                let (len, head) = self.discarding.take().unwrap_or_default();
                Ok(Some(Frame::TooLarge { len, head }))
            }
            None if !buf.is_empty() && !buf.iter().all(u8::is_ascii_whitespace) => {
                self.scanned = 0;
                Ok(Some(Frame::Line(buf.split())))
            }
            None => {
                buf.clear();
                Ok(None)
            }
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(BytesMut::from(s))
    }

    #[test]
    fn splits_lines_across_chunks() {
        let got = decode_all(100, &[b"{\"a\"", b":1}\n\n{\"b\":2}\r\n", b"{\"c\":3}"]);
        assert_eq!(got, [line("{\"a\":1}"), line("{\"b\":2}"), line("{\"c\":3}")]);
    }

    #[test]
    fn oversized_lines_are_reported_once_and_skipped() {
        let big = [b'x'; 50];
        let got = decode_all(10, &[b"{\"a\":1}\n", &big[..20], &big[20..], b"\n{\"b\":2}\n"]);
        let head = Bytes::from_static(&[b'x'; 20]);
        assert_eq!(got, [line("{\"a\":1}"), Frame::TooLarge { len: 50, head }, line("{\"b\":2}")]);
        let got = decode_all(10, &[b"0123456789ABC\nok\n"]);
        assert_eq!(
            got,
            [Frame::TooLarge { len: 13, head: Bytes::from_static(b"0123456789ABC") }, line("ok")]
        );
    }

    #[test]
    fn buffer_stays_bounded_while_discarding() {
        let mut codec = LineCodec::new(16);
        let mut buf = BytesMut::new();
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'y'; 64]);
            assert!(codec.decode(&mut buf).unwrap().is_none());
            assert!(buf.len() <= 64);
        }
    }
}
