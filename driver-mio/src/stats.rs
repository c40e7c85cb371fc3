//! The driver's own counters (the engine keeps the traffic statistics).

/// What the IO thread counts about itself. Read it with
/// [`Node::driver_stats`](crate::Node::driver_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DriverStats {
    /// Times the poller returned (readiness, a command, a deadline).
    pub wakeups: u64,
    /// Commands taken from the handles.
    pub commands: u64,
    /// `accept` calls that failed (other than `WouldBlock` and `EINTR`).
    pub accept_errors: u64,
    /// Times a listener stopped accepting for a back-off after a resource error such as `EMFILE`
    /// (too many open files) or `ENOBUFS`.
    pub accept_backoffs: u64,
    /// Discovery datagrams that were not valid beacons (ignored).
    pub discovery_malformed: u64,
    /// Discovery socket errors and refused auto-connects (beacons lost, ICMP errors, limits).
    pub discovery_errors: u64,
}
