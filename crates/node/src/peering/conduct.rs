//! Bans: a peer that breaks the protocol, or sends more than [`MAX_BAD_RECORDS`] invalid records on one connection,
//! is cut off and refused after its next handshakes for `peers::FIRST_BAN`, doubling per offence up to `peers::LONGEST_BAN`.
//! The invalid records are counted by the record policy (`kolokol_core::policy`, which asks for the disconnect); the
//! node-wide memory of offenders is the peers owner's (`crate::peers::Bans`), which the handshakes consult.

use kolokol_wire::{ExchangeError, WireError};
use tokio::io::AsyncWrite;

use super::connection::Link;
use super::{ConnectionError, chain};

/// Invalid records a peer may send on one connection before it is disconnected (the record policy's limit).
pub const MAX_BAD_RECORDS: u32 = 16;

/// How a peer misbehaved (the reason of a ban, for the log).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Misconduct {
    /// An oversized or malformed message (the wire error's causes are part of its text, as for
    /// `ConnectionError::Wire`).
    #[error("{}", chain(.0))]
    Malformed(WireError),
    #[error("protocol violation: {0}")]
    Protocol(#[source] ExchangeError),
    /// It broke the reconciliation protocol.
    #[error("{0}")]
    Reconciliation(#[source] crate::reconciling::SessionError),
    /// More invalid records on this connection than the record policy allows.
    #[error("sent {0} invalid records")]
    InvalidRecords(u32),
}

impl<W: AsyncWrite + Unpin> Link<W> {
    /// The peer broke the protocol or kept sending invalid records: ban it for a while and return why, for the log.
    pub(super) fn misbehaved(&self, misconduct: Misconduct) -> ConnectionError {
        let ban = self
            .peering
            .peers
            .bans()
            .punish(self.remote_id, self.peering.started.elapsed());
        ConnectionError::Misbehaved { misconduct, ban }
    }
}
