//! Periodic catalog reconciliation with a random connected peer (`kolokol_core::reconcile`), so that records missed
//! by push arrive anyway, also after a partition heals, while exchanging O(d log n) bytes for d differences.
//!
//! The connection task owns the sessions ([`Sessions`]); this module holds their state. When to start one, and with
//! whom, the record policy decides (`crate::record_policy`).

use kolokol_core::reconcile::{
    Initiator, InitiatorStatus, Item, ReconcileConfig, Responder, Step, VecStorage,
};
use kolokol_core::record::RecordId;

use crate::node::Inner;

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

fn snapshot(inner: &Inner) -> Result<VecStorage, String> {
    let items = inner
        .catalog()
        .reconcile_items()
        .map_err(|e| e.to_string())?;
    // Records published here that wait for a replica are not offered yet (publisher push; the record policy
    // knows which).
    let policy = inner.peers.policy();
    VecStorage::from_items(
        items
            .into_iter()
            .filter(|(_, id)| !policy.is_held_back(id))
            .map(|(t, id)| Item::new(t, id)),
    )
    .map_err(|e| e.to_string())
}

impl Sessions {
    /// Start a session: our first frame.
    pub fn start(&mut self, inner: &Inner) -> Result<(u64, Vec<u8>), String> {
        let storage = snapshot(inner)?;
        let mut initiator =
            Initiator::new(ReconcileConfig::default()).map_err(|e| e.to_string())?;
        let frame = initiator.initiate(&storage).map_err(|e| e.to_string())?;
        let session = rand::random();
        self.ours = Some((session, initiator, storage));
        Ok((session, frame))
    }

    /// A frame from the peer: an answer in our session, or a message of theirs (a new id starts a new one).
    pub fn handle(&mut self, inner: &Inner, session: u64, frame: &[u8]) -> Result<Outcome, String> {
        if let Some((ours, initiator, storage)) = &mut self.ours
            && *ours == session
        {
            let Step { have, need, reply } = initiator
                .handle(storage, frame)
                .map_err(|e| e.to_string())?;
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
        if fresh {
            let responder =
                Responder::new(ReconcileConfig::default()).map_err(|e| e.to_string())?;
            self.theirs = Some((session, responder, snapshot(inner)?));
        }
        let Some((_, responder, storage)) = &mut self.theirs else {
            return Err("no session".into());
        };
        let reply = responder
            .handle(storage, frame)
            .map_err(|e| e.to_string())?;
        Ok(Outcome {
            reply: (!reply.is_empty()).then_some((session, reply)),
            have: Vec::new(),
            need: Vec::new(),
            ours_ended: false,
        })
    }
}
