//! The node configuration shared by the subcommands, and wording for the core's reasons.

use crate::rate::ByteRate;
use crate::wire::MAX_MESSAGE;
use openp2p_tokio::{BindError, Config, ConnectFailure, Framing, Rate};
use std::time::Duration;

/// A node for file transfers: length-prefixed messages no larger than a data chunk, a send queue
/// of 1 MiB, and a 30 s idle timeout so a stalled peer does not hang the command.
pub fn transfer_config() -> Config {
    Config {
        framing: Framing::LengthPrefixed,
        max_frame_size: MAX_MESSAGE,
        send_queue_high_water: 1 << 20,
        send_queue_low_water: 256 << 10,
        idle_timeout: Some(Duration::from_secs(30)),
        segment_size: 64 << 10,
        pool_segments: 64,
        ..Config::default()
    }
}

/// The engine's token-bucket rate for a command-line rate.
pub fn engine_rate(rate: ByteRate) -> Rate {
    Rate::per_second(rate.bytes_per_sec())
}

/// A connect failure in words.
pub fn describe_connect_failure(reason: ConnectFailure) -> String {
    match reason {
        ConnectFailure::Refused => "connection refused".into(),
        ConnectFailure::TimedOut => "timed out".into(),
        ConnectFailure::Aborted => "aborted".into(),
        ConnectFailure::Shutdown => "shutting down".into(),
        ConnectFailure::Io(kind) => kind.to_string(),
        ConnectFailure::Handshake(failure) => failure.to_string(),
        other => format!("{other:?}"),
    }
}

/// A listen failure in words.
pub fn describe_bind_error(e: BindError) -> String {
    match e {
        BindError::Io(kind) => kind.to_string(),
        other => other.to_string(),
    }
}
