//! Periodic catalog reconciliation with a random connected peer (`kolokol_core::reconcile`), so that records missed
//! by push arrive anyway, also after a partition heals, while exchanging O(d log n) bytes for d differences.
//!
//! The connection task owns the sessions ([`Sessions`]); this module holds their state. When to start one, and with
//! whom, the record policy decides (`crate::record_policy`).

use kolokol_core::reconcile::{
    Initiator, InitiatorStatus, Item, ReconcileConfig, ReconcileConfigError, ReconcileError,
    Responder, Step, StorageError, VecStorage,
};
use kolokol_core::record::RecordId;

use crate::catalog::CatalogService;
use crate::record_policy::RecordPolicyOwner;

/// The reconciliation sessions of one connection: at most one we started and one the peer started.
#[derive(Default)]
pub(crate) struct Sessions {
    ours: Option<(u64, Initiator, VecStorage)>,
    theirs: Option<(u64, Responder, VecStorage)>,
}

/// What the connection must do after a reconciliation message.
pub(crate) struct Outcome {
    /// The frame to send back, with its session id.
    pub reply: Option<(u64, Vec<u8>)>,
    /// Records we hold that the peer lacks: send them.
    pub have: Vec<RecordId>,
    /// Records the peer holds that we lack: fetch them.
    pub need: Vec<RecordId>,
    /// The session we started is over (the record policy may start another).
    pub ours_ended: bool,
}

/// Why a reconciliation step failed. Only [`SessionError::Protocol`] is the peer's fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// The peer's frame broke the reconciliation protocol.
    #[error("reconciliation: {0}")]
    Protocol(#[from] ReconcileError),
    #[error("reconciliation: the catalog could not be read: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("reconciliation: {0}")]
    Storage(#[from] StorageError),
    #[error("reconciliation settings: {0}")]
    Config(#[from] ReconcileConfigError),
}

async fn snapshot(
    catalog: &CatalogService,
    policy: &RecordPolicyOwner,
) -> Result<VecStorage, SessionError> {
    let items = catalog.run(|c| c.reconcile_items()).await?;
    // Records published here that wait for a replica are not offered yet (publisher push; the record policy knows
    // which).
    let items = policy.without_held_back(items, |(_, id)| *id);
    VecStorage::from_items(items.into_iter().map(|(t, id)| Item::new(t, id)))
        .map_err(SessionError::from)
}

impl Sessions {
    /// Start a session: our first frame.
    pub async fn start(
        &mut self,
        catalog: &CatalogService,
        policy: &RecordPolicyOwner,
    ) -> Result<(u64, Vec<u8>), SessionError> {
        let storage = snapshot(catalog, policy).await?;
        let mut initiator = Initiator::new(ReconcileConfig::default())?;
        let frame = initiator.initiate(&storage)?;
        let session = rand::random();
        self.ours = Some((session, initiator, storage));
        Ok((session, frame))
    }

    /// A frame from the peer: an answer in our session, or a message of theirs (a new id starts a new one).
    pub async fn handle(
        &mut self,
        catalog: &CatalogService,
        policy: &RecordPolicyOwner,
        session: u64,
        frame: &[u8],
    ) -> Result<Outcome, SessionError> {
        if let Some((ours, initiator, storage)) = &mut self.ours
            && *ours == session
        {
            let Step { have, need, reply } = initiator.handle(storage, frame)?;
            let finished = reply.is_none();
            if finished {
                let status = initiator.status();
                tracing::debug!(
                    ?status,
                    rounds = initiator.rounds(),
                    sent = initiator.bytes_sent(),
                    "reconciliation finished"
                );
                if status != InitiatorStatus::Waiting {
                    self.ours = None;
                }
            }
            return Ok(Outcome {
                reply: reply.map(|r| (session, r)),
                have,
                need,
                ours_ended: self.ours.is_none(),
            });
        }
        let fresh = self.theirs.as_ref().is_none_or(|(id, _, _)| *id != session);
        let (_, responder, storage) = match &mut self.theirs {
            Some(theirs) if !fresh => theirs,
            slot => {
                let responder = Responder::new(ReconcileConfig::default())?;
                slot.insert((session, responder, snapshot(catalog, policy).await?))
            }
        };
        let reply = responder.handle(storage, frame)?;
        Ok(Outcome {
            reply: (!reply.is_empty()).then_some((session, reply)),
            have: Vec::new(),
            need: Vec::new(),
            ours_ended: false,
        })
    }
}
