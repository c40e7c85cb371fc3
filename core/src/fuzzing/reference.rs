//! The obvious decoders the engine's reassembly is compared with, and the wire form of a message.

use crate::Framing;
use std::collections::VecDeque;

/// Wire form of one message.
pub(super) fn framed(framing: Framing, payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(payload.len() + 4);
    if framing == Framing::LengthPrefixed {
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    }
    wire.extend_from_slice(payload);
    if let Framing::Delimited(d) = framing {
        wire.push(d);
    }
    wire
}

/// The obvious decoder, fed the same chunks as the engine: the messages it expects, or the
/// length of the first oversized frame.
#[derive(Debug)]
pub(super) struct Reference {
    framing: Framing,
    max: usize,
    partial: Vec<u8>,
    /// Length-prefixed: the announced payload length once the header is complete.
    need: Option<usize>,
    pub(super) error: Option<u64>,
    pub(super) expected: VecDeque<Vec<u8>>,
}

impl Reference {
    pub(super) fn new(framing: Framing, max: usize) -> Self {
        Reference {
            framing,
            max,
            partial: Vec::new(),
            need: None,
            error: None,
            expected: VecDeque::new(),
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        if self.error.is_some() || chunk.is_empty() {
            return;
        }
        match self.framing {
            Framing::Raw => self.expected.push_back(chunk.to_vec()),
            Framing::LengthPrefixed => {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let want = self.need.unwrap_or(4);
                    let k = (want - self.partial.len()).min(rest.len());
                    self.partial.extend_from_slice(&rest[..k]);
                    rest = &rest[k..];
                    self.lp_progress();
                    if self.error.is_some() {
                        return;
                    }
                }
                self.lp_progress();
            }
            Framing::Delimited(d) => {
                for &b in chunk {
                    if b != d {
                        self.partial.push(b);
                        continue;
                    }
                    let message = std::mem::take(&mut self.partial);
                    if message.len() > self.max {
                        self.error = Some(message.len() as u64);
                        return;
                    }
                    self.expected.push_back(message);
                }
                if self.partial.len() > self.max {
                    self.error = Some(self.partial.len() as u64);
                }
            }
        }
    }

    fn lp_progress(&mut self) {
        loop {
            match self.need {
                None if self.partial.len() == 4 => {
                    let len = u32::from_be_bytes([
                        self.partial[0],
                        self.partial[1],
                        self.partial[2],
                        self.partial[3],
                    ]) as usize;
                    self.partial.clear();
                    if len > self.max {
                        self.error = Some(len as u64);
                        return;
                    }
                    self.need = Some(len);
                }
                Some(n) if self.partial.len() == n => {
                    self.expected.push_back(std::mem::take(&mut self.partial));
                    self.need = None;
                }
                _ => return,
            }
        }
    }
}
