//! Engine configuration: resource bounds, timeouts, framing and rate limits, validated once.

use core::fmt;
use std::time::Duration;

/// How a connection's byte stream is cut into messages.
///
/// The same framing applies in both directions of a connection: `send` adds the framing, and
/// `Event::Received` carries one whole message (or, for `Raw`, one chunk as it arrived).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// No framing: every read is delivered as one chunk, every send is written as it is.
    #[default]
    Raw,
    /// Each message is preceded by its length as a 4-byte big-endian integer (Open.P2P's
    /// "Pascal" framing). A length over [`Config::max_frame_size`] disconnects the peer with
    /// [`DisconnectReason::FrameTooLarge`](crate::DisconnectReason::FrameTooLarge).
    LengthPrefixed,
    /// Each message ends with this byte (Open.P2P's EOT framing). A payload may not contain it;
    /// a message longer than [`Config::max_frame_size`] disconnects the peer.
    Delimited(u8),
}

impl Framing {
    /// Bytes of framing added to each message on the wire.
    ///
    /// ```
    /// use openp2p_core::Framing;
    /// assert_eq!(Framing::LengthPrefixed.overhead(), 4);
    /// assert_eq!(Framing::Delimited(b'\n').framed_len(10), 11);
    /// ```
    pub fn overhead(self) -> usize {
        match self {
            Framing::Raw => 0,
            Framing::LengthPrefixed => 4,
            Framing::Delimited(_) => 1,
        }
    }

    /// Wire length of a message of `payload` bytes.
    pub fn framed_len(self, payload: usize) -> u64 {
        (payload + self.overhead()) as u64
    }
}

/// A token-bucket rate: a sustained rate in bytes per second and a burst in bytes.
///
/// ```
/// use openp2p_core::Rate;
/// let r = Rate::per_second(64 * 1024);
/// assert_eq!(r.bytes_per_sec(), 65_536);
/// assert!(r.burst() >= 1024);
/// let r = r.with_burst(16 * 1024);
/// assert_eq!(r.burst(), 16_384);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    bytes_per_sec: u64,
    burst: u64,
}

impl Rate {
    /// The smallest default burst: below this, throttled peers would wake for a handful of bytes.
    pub const MIN_DEFAULT_BURST: u64 = 1024;

    /// A rate with the default burst: 50 ms worth of bytes, at least [`Self::MIN_DEFAULT_BURST`].
    /// A rate of 0 is raised to 1 byte per second (a paused peer is better expressed by not
    /// sending).
    pub fn per_second(bytes_per_sec: u64) -> Rate {
        let bytes_per_sec = bytes_per_sec.max(1);
        Rate {
            bytes_per_sec,
            burst: (bytes_per_sec / 20).max(Self::MIN_DEFAULT_BURST),
        }
    }

    /// The same rate with another burst (at least 1 byte).
    pub fn with_burst(self, burst: u64) -> Rate {
        Rate {
            burst: burst.max(1),
            ..self
        }
    }

    /// Sustained rate, bytes per second.
    pub fn bytes_per_sec(self) -> u64 {
        self.bytes_per_sec
    }

    /// Most bytes granted at once after an idle period.
    pub fn burst(self) -> u64 {
        self.burst
    }
}

/// Upload and download limits for one peer or for the whole engine. `None` is unlimited.
///
/// ```
/// use openp2p_core::{Limits, Rate};
/// let limits = Limits { upload: Some(Rate::per_second(256 * 1024)), download: None };
/// assert_eq!(limits, Limits::upload(Rate::per_second(256 * 1024)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    /// Bytes this side writes to the socket.
    pub upload: Option<Rate>,
    /// Bytes this side reads from the socket (enforced by not reading: TCP's window throttles
    /// the sender).
    pub download: Option<Rate>,
}

impl Limits {
    /// No limit in either direction.
    pub const UNLIMITED: Limits = Limits {
        upload: None,
        download: None,
    };

    /// Only an upload limit.
    pub fn upload(rate: Rate) -> Limits {
        Limits {
            upload: Some(rate),
            download: None,
        }
    }

    /// Only a download limit.
    pub fn download(rate: Rate) -> Limits {
        Limits {
            upload: None,
            download: Some(rate),
        }
    }
}

/// Everything the engine bounds, with sane defaults. Build it with struct update syntax and hand it
/// to [`Engine::new`](crate::Engine::new), which validates it.
///
/// ```
/// use openp2p_core::{Config, Framing};
/// use std::time::Duration;
/// let config = Config {
///     max_peers: 100,
///     framing: Framing::LengthPrefixed,
///     idle_timeout: Some(Duration::from_secs(30)),
///     ..Config::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most connected or connecting peers at once (inbound and outbound together).
    pub max_peers: usize,
    /// Most outbound connects in flight at once.
    pub max_pending_connects: usize,
    /// Most inbound peers from one IPv4 address or one IPv6 /64 network (IPv4-mapped IPv6
    /// addresses count as IPv4).
    pub max_peers_per_ip: usize,
    /// A peer's send queue (bytes accepted but not yet written) may not grow past this: `send`
    /// answers `SendError::QueueFull` instead. One message is always accepted into an empty queue.
    pub send_queue_high_water: usize,
    /// After a `QueueFull`, `Event::Writable` is emitted once the queue drains to this many bytes.
    pub send_queue_low_water: usize,
    /// Largest framed message, either direction. A message larger than a segment is gathered
    /// outside the pool, in memory that grows with the bytes actually received: at most this
    /// much per peer, so `max_peers x max_frame_size` bounds it for the engine.
    pub max_frame_size: usize,
    /// An outbound connect not completed in this time fails with `TimedOut`.
    pub connect_timeout: Duration,
    /// A connected peer that neither sends nor receives for this long is disconnected.
    pub idle_timeout: Option<Duration>,
    /// A graceful disconnect that has not flushed and seen the remote close in this long is cut.
    pub linger_timeout: Duration,
    /// Size of one pooled receive segment; also the largest single read.
    pub segment_size: usize,
    /// Number of receive segments allocated up front. When all are in use, reading pauses until
    /// the application drops received data. Partial messages of idle peers are moved out of the
    /// pool (bounded by `max_frame_size` each) when it runs dry, so remotes trickling partial
    /// messages cannot pin it.
    pub pool_segments: usize,
    /// Framing of listeners and connects that do not name their own.
    pub framing: Framing,
    /// Limits given to every new peer (change them per peer with `set_limits`).
    pub peer_limits: Limits,
    /// Limits shared by all peers, fairly among the peers that want bandwidth.
    pub global_limits: Limits,
    /// Keep a peer open after the remote's EOF (TCP half-close): the application is told with
    /// `Event::ReadClosed`, may go on sending, and closes with `disconnect`. When false, the
    /// remote's EOF flushes what is queued and closes the peer.
    pub half_close: bool,
    /// Emit `Event::Sent` after every socket write. Turn off when nobody listens for them: it
    /// halves the events of a request/response workload.
    pub sent_events: bool,
    /// Drivers set `TCP_NODELAY` on every connection when true.
    pub nodelay: bool,
    /// Drivers enable TCP keepalive with this idle time when set.
    pub keepalive: Option<Duration>,
    /// Drivers pass this backlog to `listen(2)`.
    pub listen_backlog: u32,
    /// Secure channels (Noise XX) on every connection when set; plaintext when `None`. A secure
    /// engine needs entropy: build it with [`Engine::with_entropy`](crate::Engine::with_entropy).
    pub secure: Option<crate::SecureConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_peers: 10_000,
            max_pending_connects: 1_024,
            max_peers_per_ip: 256,
            send_queue_high_water: 4 * 1024 * 1024,
            send_queue_low_water: 1024 * 1024,
            max_frame_size: 16 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            linger_timeout: Duration::from_secs(10),
            segment_size: 128 * 1024,
            pool_segments: 256,
            framing: Framing::Raw,
            peer_limits: Limits::UNLIMITED,
            global_limits: Limits::UNLIMITED,
            half_close: false,
            sent_events: true,
            nodelay: true,
            keepalive: Some(Duration::from_secs(60)),
            listen_backlog: 1_024,
            secure: None,
        }
    }
}

/// Why a [`Config`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A count or size that must be at least 1 was 0.
    Zero(&'static str),
    /// The low-water mark was above the high-water mark.
    LowWaterAboveHighWater {
        /// The configured low-water mark.
        low: usize,
        /// The configured high-water mark.
        high: usize,
    },
    /// `max_frame_size` does not fit the 4-byte length prefix.
    FrameSizeTooLarge(usize),
    /// `segment_size` is below the minimum (the delimiter scan and reads need room).
    SegmentTooSmall(usize),
    /// `segment_size * pool_segments` overflows or exceeds 64 GiB.
    PoolTooLarge,
    /// Secure channels need segments that hold a whole Noise transport message with room to
    /// spare: at least [`MIN_SECURE_SEGMENT_SIZE`].
    SegmentTooSmallForSecure(usize),
    /// The configuration is secure and the engine was built without entropy: use
    /// [`Engine::with_entropy`](crate::Engine::with_entropy).
    NeedsEntropy,
    /// The operating system's RNG failed.
    NoEntropy,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Zero(field) => write!(f, "config field `{field}` must be at least 1"),
            ConfigError::LowWaterAboveHighWater { low, high } => {
                write!(f, "send queue low water {low} is above high water {high}")
            }
            ConfigError::FrameSizeTooLarge(n) => {
                write!(f, "max_frame_size {n} does not fit a 4-byte length prefix")
            }
            ConfigError::SegmentTooSmall(n) => {
                write!(
                    f,
                    "segment_size {n} is below the minimum of {MIN_SEGMENT_SIZE}"
                )
            }
            ConfigError::PoolTooLarge => f.write_str("segment_size x pool_segments is too large"),
            ConfigError::SegmentTooSmallForSecure(n) => write!(
                f,
                "segment_size {n} is below the secure minimum of {MIN_SECURE_SEGMENT_SIZE}"
            ),
            ConfigError::NoEntropy => f.write_str("the operating system's RNG failed"),
            ConfigError::NeedsEntropy => {
                f.write_str("a secure engine needs entropy: use Engine::with_entropy")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The smallest segment the engine accepts.
pub const MIN_SEGMENT_SIZE: usize = 512;

/// Smallest `segment_size` with secure channels on: a whole transport message (65,537 wire
/// bytes) and a useful read after it.
pub const MIN_SECURE_SEGMENT_SIZE: usize = 80 * 1024;

const MAX_POOL_BYTES: usize = 64 << 30;

impl Config {
    /// Whether `send` accepts a message for a peer with this framing and `queued` bytes already
    /// queued; returns its wire length. The engine applies exactly this rule; a driver that
    /// answers `send` without a round trip can apply it too.
    ///
    /// ```
    /// use openp2p_core::{Config, Framing, SendError};
    /// let config = Config { send_queue_high_water: 100, ..Config::default() };
    /// assert_eq!(config.admit(Framing::LengthPrefixed, b"hi", 0), Ok(6));
    /// assert!(matches!(config.admit(Framing::Raw, &[0; 60], 50), Err(SendError::QueueFull { .. })));
    /// assert_eq!(config.admit(Framing::Delimited(0), b"a\0b", 0), Err(SendError::DelimiterInPayload));
    /// ```
    pub fn admit(
        &self,
        framing: Framing,
        payload: &[u8],
        queued: u64,
    ) -> Result<u64, crate::SendError> {
        use crate::SendError;
        let max = self.max_frame_size;
        match framing {
            Framing::Raw => {}
            _ if payload.len() > max => {
                return Err(SendError::FrameTooLarge {
                    len: payload.len() as u64,
                    max: max as u64,
                })
            }
            Framing::Delimited(d) if payload.contains(&d) => {
                return Err(SendError::DelimiterInPayload)
            }
            _ => {}
        }
        let len = framing.framed_len(payload.len());
        let high = self.send_queue_high_water as u64;
        if queued > 0 && queued + len > high {
            return Err(SendError::QueueFull {
                queued,
                limit: high,
            });
        }
        Ok(len)
    }

    /// Checks every field; [`Engine::new`](crate::Engine::new) calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("max_peers", self.max_peers),
            ("max_pending_connects", self.max_pending_connects),
            ("max_peers_per_ip", self.max_peers_per_ip),
            ("send_queue_high_water", self.send_queue_high_water),
            ("max_frame_size", self.max_frame_size),
            ("pool_segments", self.pool_segments),
        ];
        if let Some((field, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(field));
        }
        if self.send_queue_low_water > self.send_queue_high_water {
            return Err(ConfigError::LowWaterAboveHighWater {
                low: self.send_queue_low_water,
                high: self.send_queue_high_water,
            });
        }
        if u32::try_from(self.max_frame_size).is_err() {
            return Err(ConfigError::FrameSizeTooLarge(self.max_frame_size));
        }
        if self.segment_size < MIN_SEGMENT_SIZE {
            return Err(ConfigError::SegmentTooSmall(self.segment_size));
        }
        if self.secure.is_some() && self.segment_size < MIN_SECURE_SEGMENT_SIZE {
            return Err(ConfigError::SegmentTooSmallForSecure(self.segment_size));
        }
        match self.segment_size.checked_mul(self.pool_segments) {
            Some(total) if total <= MAX_POOL_BYTES => Ok(()),
            _ => Err(ConfigError::PoolTooLarge),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn each_invalid_field_is_named_in_the_error() {
        let zero_peers = Config {
            max_peers: 0,
            ..Config::default()
        };
        assert_eq!(zero_peers.validate(), Err(ConfigError::Zero("max_peers")));
        let marks = Config {
            send_queue_low_water: 10,
            send_queue_high_water: 5,
            ..Config::default()
        };
        assert_eq!(
            marks.validate(),
            Err(ConfigError::LowWaterAboveHighWater { low: 10, high: 5 })
        );
        let tiny = Config {
            segment_size: 16,
            ..Config::default()
        };
        assert_eq!(tiny.validate(), Err(ConfigError::SegmentTooSmall(16)));
        let huge = Config {
            segment_size: usize::MAX,
            ..Config::default()
        };
        assert_eq!(huge.validate(), Err(ConfigError::PoolTooLarge));
    }

    #[test]
    fn a_zero_rate_is_raised_to_one_byte_per_second() {
        assert_eq!(Rate::per_second(0).bytes_per_sec(), 1);
        assert_eq!(Rate::per_second(0).with_burst(0).burst(), 1);
    }
}
