//! Bans: a peer that breaks the protocol, or sends more than [`MAX_BAD_RECORDS`] invalid records on one connection,
//! is cut off and refused after its next handshakes for `peers::FIRST_BAN`, doubling per offence up to `peers::LONGEST_BAN`.
//! The invalid records are counted by the record policy (`kolokol_core::policy`, which asks for the disconnect); the
//! node-wide memory of offenders is the peers owner's (`crate::peers::Bans`), which the handshakes consult.

use tokio::io::AsyncWrite;

use super::ConnectionError;
use super::connection::Link;

/// Invalid records a peer may send on one connection before it is disconnected (the record policy's limit).
pub const MAX_BAD_RECORDS: u32 = 16;

impl<W: AsyncWrite + Unpin> Link<W> {
    /// The peer broke the protocol or kept sending invalid records: ban it for a while and return why, for the log.
    pub(super) fn misbehaved(&self, reason: String) -> ConnectionError {
        let ban = self
            .peering
            .peers
            .bans()
            .punish(self.remote_id, self.peering.started.elapsed());
        ConnectionError::Misbehaved { reason, ban }
    }
}
