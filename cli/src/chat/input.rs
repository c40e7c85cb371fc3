//! The chat's standard input, read line by line with a bound on the line length (a line without
//! an end never grows memory past the bound).

use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes, without the line end (`\n` or `\r\n`); not necessarily UTF-8.
    Text(Vec<u8>),
    /// A line longer than the limit, discarded; its length in bytes.
    TooLong(usize),
}

/// Reads the next line of at most `max` bytes. `None` at the end of the input. The bytes of a
/// longer line are skipped up to its end and reported as [`Line::TooLong`].
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut len = 0usize;
    let mut last = None;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(last.is_some().then(|| finish(line, len, last, max)));
        }
        let end = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        len = len.saturating_add(chunk.len());
        if let Some(&b) = chunk.last() {
            last = Some(b);
        } else if last.is_none() {
            // An empty line: mark the input as started without a last byte of text.
            last = Some(b'\n');
        }
        if len <= max.saturating_add(1) {
            // One byte of slack for the `\r` of a `\r\n` line end.
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        let used = end.map_or(buf.len(), |i| i + 1);
        reader.consume(used);
        if end.is_some() {
            return Ok(Some(finish(line, len, last, max)));
        }
    }
}

/// The line without a trailing `\r`, or its length if that is over `max`.
fn finish(mut line: Vec<u8>, mut len: usize, last: Option<u8>, max: usize) -> Line {
    if last == Some(b'\r') {
        len -= 1;
        line.pop();
    }
    if len > max {
        Line::TooLong(len)
    } else {
        Line::Text(line)
    }
}

/// Standard input's lines as they are typed (or none at all, for `--say`).
#[derive(Debug)]
pub struct Input {
    lines: Option<mpsc::Receiver<Line>>,
}

impl Input {
    /// No input: the lines were given on the command line.
    pub fn closed() -> Input {
        Input { lines: None }
    }

    /// Standard input, read by a task of its own (so waiting for a line never races with the
    /// network). A read error ends the input like its end does.
    pub fn stdin(max: usize) -> Input {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut reader = BufReader::new(tokio::io::stdin());
            while let Ok(Some(line)) = read_line(&mut reader, max).await {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
        Input { lines: Some(rx) }
    }

    /// The next line; `None` once the input has ended.
    pub async fn next(&mut self) -> Option<Line> {
        self.lines.as_mut()?.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(mut input: &[u8], max: usize) -> Vec<Line> {
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut input, max).await.unwrap() {
            lines.push(line);
        }
        lines
    }

    fn text(s: &[u8]) -> Line {
        Line::Text(s.to_vec())
    }

    #[tokio::test]
    async fn lines_end_at_newlines_crlf_or_the_end_of_input() {
        assert_eq!(
            all(b"one\ntwo\r\n\nlast", 10).await,
            [text(b"one"), text(b"two"), text(b""), text(b"last")]
        );
        assert_eq!(all(b"", 10).await, []);
        assert_eq!(
            all(b"\xff\xfe bytes\n", 10).await,
            [text(b"\xff\xfe bytes")]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_skipped_to_its_end_and_reported() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nok\r\n");
        input.extend_from_slice(&[b'y'; 11]);
        assert_eq!(
            all(&input, 10).await,
            [Line::TooLong(100_000), text(b"ok"), Line::TooLong(11)]
        );
        // Exactly at the limit, with or without `\r`.
        assert_eq!(
            all(b"0123456789\r\n0123456789\n", 10).await,
            [text(b"0123456789"), text(b"0123456789")]
        );
        assert_eq!(all(b"0123456789\r\r\n", 10).await, [Line::TooLong(11)]);
    }
}
