//! Bans: a peer that breaks the protocol, or sends more than [`MAX_BAD_RECORDS`] invalid records on one connection,
//! is cut off and refused after its next handshakes for `peers::FIRST_BAN`, doubling per offence up to `peers::LONGEST_BAN`.
//! The per-connection count lives here ([`Conduct`]); the node-wide memory of offenders is the peers owner's
//! (`crate::peers::Bans`), which the handshakes consult.

use tokio::io::AsyncWrite;

use super::ConnectionError;
use super::connection::Link;

/// Invalid records a peer may send on one connection before it is disconnected.
pub const MAX_BAD_RECORDS: u32 = 16;
/// How one connection's peer has behaved so far.
#[derive(Default)]
pub(super) struct Conduct {
    bad_records: u32,
}

impl Conduct {
    /// Count `count` invalid records; `false` once the peer is past [`MAX_BAD_RECORDS`].
    fn invalid_records(&mut self, count: u32) -> bool {
        self.bad_records = self.bad_records.saturating_add(count);
        self.bad_records <= MAX_BAD_RECORDS
    }
}

impl<W: AsyncWrite + Unpin> Link<W> {
    /// The peer sent `count` invalid records: past the limit, it is banned and the connection ends.
    pub(super) fn invalid_records(&mut self, count: u32) -> Result<(), ConnectionError> {
        if self.conduct.invalid_records(count) {
            return Ok(());
        }
        let reason = format!("sent {} invalid records", self.conduct.bad_records);
        Err(self.misbehaved(reason))
    }

    /// The peer broke the protocol or kept sending invalid records: ban it for a while and return why, for the log.
    pub(super) fn misbehaved(&self, reason: String) -> ConnectionError {
        let ban = self
            .inner
            .peers
            .bans()
            .punish(self.remote_id, self.inner.elapsed());
        ConnectionError::Misbehaved { reason, ban }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_cut_off_only_past_the_limit() {
        let mut conduct = Conduct::default();
        assert!(conduct.invalid_records(MAX_BAD_RECORDS));
        assert!(!conduct.invalid_records(1));
        assert!(!conduct.invalid_records(u32::MAX), "no overflow");
    }
}
