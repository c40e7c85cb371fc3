//! One peer's secure channel: handshake, then transport messages, worked in the peer's segment.
//!
//! Received bytes land in the peer's pooled segment right after the plaintext the framing layer
//! has not consumed yet. [`Channel::open`] works through whole Noise messages there: handshake
//! messages are consumed, transport messages are decrypted in place (ring's `open_within` writes
//! the plaintext right after the earlier plaintext, in the same pass), and an incomplete message
//! is moved down to stay next to the plaintext. So the framing layer always sees contiguous
//! plaintext at the segment's front, and nothing is copied to a second buffer.

use super::handshake::{Handshake, MAX_MESSAGE};
use super::outbox::{FreeOutboxes, Outbox, Record, TARGET};
use super::transport::{CipherState, HEADER, MAX_PLAINTEXT, TAG};
use super::{HandshakeFailure, SecureConfig, TransportFailure};
use crate::queue::{SendQueue, MAX_SLICES};
use crate::secure::PeerKey;
use std::io::IoSlice;

#[derive(Debug)]
enum Stage {
    /// TCP is not up yet.
    Waiting,
    Handshake(Box<Handshake>),
    Transport(Box<[CipherState; 2]>),
    /// Between the handshake and transport, and after a failed switch: reads nothing more.
    Failed,
}

const SEND: usize = 0;
const RECV: usize = 1;

/// Why the secure layer gave up on a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Handshake(HandshakeFailure),
}

/// What one call to [`Channel::open`] achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opened {
    /// Plaintext bytes appended after the earlier plaintext.
    pub(crate) plain: usize,
    /// The handshake finished in this call (the remote's key passed the gate).
    pub(crate) established: bool,
    /// A transport message failed: the plaintext opened before it is to be delivered, then the
    /// peer closed with this reason.
    pub(crate) broken: Option<TransportFailure>,
}

/// A peer's secure channel state.
#[derive(Debug)]
pub(crate) struct Channel {
    stage: Stage,
    /// The key the dialer pinned, if any.
    pub(crate) expect: Option<PeerKey>,
    /// The remote's static key, once the handshake has shown it.
    pub(crate) remote: Option<PeerKey>,
    /// Received bytes right after the peer's plaintext that are not a whole Noise message yet.
    pub(crate) pending: usize,
    /// Sealed bytes waiting for the socket (lent by the engine's free list).
    pub(crate) outbox: Option<Box<Outbox>>,
    /// Why the handshake failed, for the report when the peer closes.
    pub(crate) failure: Option<HandshakeFailure>,
    /// A partial handshake message moved out of the pool while the peer is quiet.
    stash: Vec<u8>,
}

impl Channel {
    /// A channel for a peer whose TCP connection is not up yet; `expect` is the key a dial
    /// pinned.
    pub(crate) fn new(expect: Option<PeerKey>) -> Channel {
        Channel {
            stage: Stage::Waiting,
            expect,
            remote: None,
            pending: 0,
            outbox: None,
            failure: None,
            stash: Vec::new(),
        }
    }

    /// TCP is up: starts the handshake (`initiator` is the side that dialed, which queues its
    /// first message at once). `seed` is fresh entropy for the ephemeral key.
    pub(crate) fn begin(
        &mut self,
        initiator: bool,
        config: &SecureConfig,
        seed: [u8; 32],
        free: &mut FreeOutboxes,
    ) -> Result<(), HandshakeFailure> {
        let handshake = Handshake::new(initiator, config.suite, &config.identity, seed)?;
        self.stage = Stage::Handshake(Box::new(handshake));
        self.write_handshake_turn(free)
    }

    /// Moves the pending bytes at the front of `segment` (a partial handshake message; the
    /// caller checked there is no plaintext before them) out of the pool.
    pub(crate) fn stash(&mut self, segment: &[u8]) {
        if self.pending > 0 && self.pending <= MAX_MESSAGE + HEADER {
            self.stash
                .extend_from_slice(&segment[..self.pending.min(segment.len())]);
            self.pending = 0;
        }
    }

    /// Puts stashed bytes back into the peer's segment, after its `filled` plaintext bytes.
    pub(crate) fn unstash(&mut self, segment: &mut bytes::BytesMut, filled: usize) {
        if self.stash.is_empty() {
            return;
        }
        segment.truncate(filled + self.pending);
        segment.extend_from_slice(&self.stash);
        self.pending += self.stash.len();
        self.stash = Vec::new();
    }

    /// Drops the expanded transport keys of a quiet peer (see `CipherState`); true if they were
    /// expanded. Nothing else changes.
    pub(crate) fn compact(&mut self) -> bool {
        match &mut self.stage {
            Stage::Transport(ciphers) if ciphers.iter().any(|c| c.is_expanded()) => {
                ciphers.iter_mut().for_each(|c| c.compact());
                true
            }
            _ => false,
        }
    }

    /// Whether the transport keys are expanded (the peer has been busy lately).
    pub(crate) fn is_hot(&self) -> bool {
        matches!(&self.stage, Stage::Transport(c) if c.iter().any(|c| c.is_expanded()))
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.stage, Stage::Transport(_))
    }

    /// Whether sealed bytes wait for the socket.
    pub(crate) fn has_output(&self) -> bool {
        self.outbox.as_ref().is_some_and(|o| !o.is_empty())
    }

    /// Application bytes sealed but not wholly written.
    pub(crate) fn unsent(&self) -> u64 {
        self.outbox.as_ref().map_or(0, |o| o.unsent())
    }

    /// The socket took `n` more sealed bytes: the application bytes and messages whose
    /// transport messages are now wholly written. A drained outbox goes back to the free list.
    pub(crate) fn written(&mut self, n: usize, free: &mut FreeOutboxes) -> (u64, u64) {
        let Some(outbox) = &mut self.outbox else {
            return (0, 0);
        };
        let done = outbox.advance(n);
        self.release_outbox(free);
        (done.plain, done.messages)
    }

    /// Returns a drained outbox to the free list.
    pub(crate) fn release_outbox(&mut self, free: &mut FreeOutboxes) {
        if self.outbox.as_ref().is_some_and(|o| o.is_empty()) {
            if let Some(outbox) = self.outbox.take() {
                free.give_back(outbox);
            }
        }
    }

    /// Gives the outbox back whatever it holds (the peer is closing).
    pub(crate) fn discard(&mut self, free: &mut FreeOutboxes) {
        if let Some(outbox) = self.outbox.take() {
            free.give_back(outbox);
        }
    }

    fn write_handshake_turn(&mut self, free: &mut FreeOutboxes) -> Result<(), HandshakeFailure> {
        let Stage::Handshake(handshake) = &mut self.stage else {
            return Ok(());
        };
        if !handshake.my_turn() {
            return Ok(());
        }
        let outbox = self.outbox.get_or_insert_with(|| free.take());
        handshake.write(&mut outbox.buf)?;
        let end = outbox.buf.len();
        outbox.records.push(Record {
            end,
            plain: 0,
            messages: 0,
        });
        Ok(())
    }

    /// Works through the Noise messages in `segment[*filled..*filled + self.pending]` (the
    /// caller has just added the newly read bytes to `pending`): see the module docs.
    pub(crate) fn open(
        &mut self,
        segment: &mut [u8],
        filled: &mut usize,
        config: &SecureConfig,
        free: &mut FreeOutboxes,
    ) -> Result<Opened, Failure> {
        let end = (*filled + self.pending).min(segment.len());
        let mut plain_end = *filled;
        let mut cursor = *filled;
        let mut opened = Opened::default();
        while end - cursor >= HEADER {
            let len = usize::from(u16::from_be_bytes([segment[cursor], segment[cursor + 1]]));
            match &mut self.stage {
                Stage::Handshake(handshake) => {
                    if len > MAX_MESSAGE {
                        return Err(Failure::Handshake(HandshakeFailure::Malformed));
                    }
                    if end - cursor < HEADER + len {
                        break;
                    }
                    let message = &segment[cursor + HEADER..cursor + HEADER + len];
                    handshake.read(message).map_err(Failure::Handshake)?;
                    cursor += HEADER + len;
                    self.after_handshake_message(config, free)
                        .map_err(Failure::Handshake)?;
                    opened.established |= self.is_established();
                }
                Stage::Transport(ciphers) => {
                    if len < TAG {
                        opened.broken = Some(TransportFailure::Malformed);
                        break;
                    }
                    if end - cursor < HEADER + len {
                        break;
                    }
                    let record = &mut segment[plain_end..cursor + HEADER + len];
                    let Ok(n) = ciphers[RECV].open_within(record, cursor + HEADER - plain_end)
                    else {
                        // The plaintext before this message is authentic and stays; nothing of
                        // this one or after it is used.
                        opened.broken = Some(TransportFailure::Decrypt);
                        break;
                    };
                    plain_end += n;
                    opened.plain += n;
                    cursor += HEADER + len;
                }
                Stage::Waiting | Stage::Failed => {
                    return Err(Failure::Handshake(HandshakeFailure::Malformed))
                }
            }
        }
        if opened.broken.is_some() {
            self.pending = 0;
            *filled = plain_end;
            return Ok(opened);
        }
        if cursor > plain_end && end > cursor {
            segment.copy_within(cursor..end, plain_end);
        }
        self.pending = end - cursor;
        *filled = plain_end;
        Ok(opened)
    }

    /// After reading a handshake message: check the remote's key as soon as it is known (the
    /// dialer before it answers, the listener at the end), answer, and switch to transport.
    fn after_handshake_message(
        &mut self,
        config: &SecureConfig,
        free: &mut FreeOutboxes,
    ) -> Result<(), HandshakeFailure> {
        let Stage::Handshake(handshake) = &self.stage else {
            return Ok(());
        };
        if self.remote.is_none() {
            if let Some(remote) = handshake.remote() {
                self.remote = Some(remote);
                if let Some(expected) = self.expect.filter(|e| *e != remote) {
                    return Err(HandshakeFailure::KeyMismatch {
                        expected,
                        actual: remote,
                    });
                }
                if !config.allow.admits(&remote) {
                    return Err(HandshakeFailure::NotAllowed { key: remote });
                }
            }
        }
        self.write_handshake_turn(free)?;
        let Stage::Handshake(handshake) = &mut self.stage else {
            return Ok(());
        };
        if handshake.is_finished() {
            let Stage::Handshake(handshake) = core::mem::replace(&mut self.stage, Stage::Failed)
            else {
                return Ok(());
            };
            let keys = handshake.into_keys()?;
            let suite = config.suite;
            let (Some(send), Some(recv)) = (
                CipherState::new(suite, &keys.send),
                CipherState::new(suite, &keys.recv),
            ) else {
                return Err(HandshakeFailure::Malformed);
            };
            self.stage = Stage::Transport(Box::new([send, recv]));
        }
        Ok(())
    }

    /// Seals queued plaintext into the outbox when it is empty: up to [`TARGET`] wire bytes, in
    /// transport messages of at most 65,519 plaintext bytes. Does nothing before the handshake
    /// has finished or while sealed bytes still wait.
    pub(crate) fn seal(
        &mut self,
        queue: &mut SendQueue,
        free: &mut FreeOutboxes,
    ) -> Result<(), TransportFailure> {
        let Stage::Transport(ciphers) = &mut self.stage else {
            return Ok(());
        };
        if self.outbox.as_ref().is_some_and(|o| !o.is_empty()) || queue.is_empty() {
            return Ok(());
        }
        let outbox = self.outbox.get_or_insert_with(|| free.take());
        outbox.buf.clear();
        outbox.pos = 0;
        outbox.records.clear();
        let target = TARGET;
        while !queue.is_empty() && outbox.buf.len() + HEADER + TAG < target {
            let room = (target - outbox.buf.len() - HEADER - TAG).min(MAX_PLAINTEXT);
            let start = outbox.buf.len() + HEADER;
            outbox.buf.extend_from_slice(&[0; HEADER]);
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = queue.slices(room, &mut slices);
            for slice in &slices[..count] {
                outbox.buf.extend_from_slice(slice);
            }
            let plain = outbox.buf.len() - start;
            let messages = queue.advance(plain);
            ciphers[SEND]
                .seal_record(&mut outbox.buf, start)
                .map_err(|_| TransportFailure::Malformed)?;
            let end = outbox.buf.len();
            outbox.records.push(Record {
                end,
                plain: plain as u64,
                messages,
            });
        }
        Ok(())
    }
}
