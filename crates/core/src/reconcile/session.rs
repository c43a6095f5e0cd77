//! The two roles of a reconciliation session, [`Initiator`] and [`Responder`], over one shared message
//! processor.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use super::fingerprint::FINGERPRINT_BYTES;
use super::item::{Bound, ID_BYTES};
use super::message::{self, Encoder, MAX_BOUND_BYTES, Message, Mode};
use super::storage::ReconcileStorage;
use super::{ReconcileConfig, ReconcileConfigError, ReconcileError};
use crate::record::RecordId;

/// Bytes kept free in every message for what closes it early: a Skip up to the current position and a
/// Fingerprint over the rest.
const CLOSING_RESERVE: usize = MAX_BOUND_BYTES + 1 + (1 + 1 + 1 + FINGERPRINT_BYTES) + 16;
/// Most bytes of the bound, mode and count that open an id list.
const ID_LIST_HEADER: usize = MAX_BOUND_BYTES + 1 + 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

/// What one pass over a received message produced. Nothing of it is applied until the pass succeeded.
struct Pass {
    reply: Encoder,
    /// Ids of ours the peer lacks, found in id lists (initiator only).
    have: Vec<RecordId>,
    /// Ids of the peer's we lack, found in id lists (initiator only).
    need: Vec<RecordId>,
}

/// Writes the reply to `received` (the initiator's first message when `received` is `None`).
fn process<S: ReconcileStorage>(
    storage: &S,
    config: &ReconcileConfig,
    role: Role,
    received: &Message,
) -> Result<Pass, S::Error> {
    let n = storage.size()?;
    let budget = config.frame_size_limit;
    let mut pass = Pass {
        reply: Encoder::new(),
        have: Vec::new(),
        need: Vec::new(),
    };
    let mut prev_index = 0;
    let mut prev_bound = Bound::ZERO;
    // Skipped ranges are merged: a Skip up to `prev_bound` is owed when this is set, written only when another
    // range follows (a message ending in skips just stops: the rest is an implicit Skip).
    let mut skip_owed = false;
    // Whether a range that needs an answer was written; the first one is always written whatever its size, so
    // that every message makes progress.
    let mut answered_any = false;

    for range in &received.ranges {
        let lower = prev_index;
        let upper = storage.lower_bound(lower, n, &range.upper)?;
        let before = pass.reply.checkpoint();
        let skip_was_owed = skip_owed;
        match &range.mode {
            Mode::Skip => skip_owed = true,
            Mode::Fingerprint(theirs) => {
                if storage.fingerprint(lower, upper)? == *theirs {
                    skip_owed = true;
                } else {
                    flush_skip(&mut pass.reply, &mut skip_owed, &prev_bound);
                    split(storage, config, &mut pass.reply, lower, upper, &range.upper)?;
                    if answered_any && pass.reply.len() + CLOSING_RESERVE > budget {
                        pass.reply.rollback(before);
                        skip_owed = skip_was_owed;
                        close_early(
                            storage,
                            &mut pass.reply,
                            &mut skip_owed,
                            &prev_bound,
                            lower,
                            n,
                        )?;
                        return Ok(pass);
                    }
                    answered_any = true;
                }
            }
            Mode::IdList(theirs) => match role {
                Role::Initiator => {
                    compare_id_list(storage, lower, upper, theirs, &mut pass)?;
                    skip_owed = true;
                }
                Role::Responder => {
                    flush_skip(&mut pass.reply, &mut skip_owed, &prev_bound);
                    let room = budget
                        .saturating_sub(pass.reply.len() + CLOSING_RESERVE + ID_LIST_HEADER)
                        / ID_BYTES;
                    let count = upper - lower;
                    // The first answered range of a message lists at least one id, so that every message
                    // makes progress.
                    let allowance = if answered_any { room } else { room.max(1) };
                    if count <= allowance {
                        write_id_list(storage, &mut pass.reply, lower, upper, &range.upper)?;
                        answered_any = true;
                    } else if allowance == 0 {
                        pass.reply.rollback(before);
                        skip_owed = skip_was_owed;
                        close_early(
                            storage,
                            &mut pass.reply,
                            &mut skip_owed,
                            &prev_bound,
                            lower,
                            n,
                        )?;
                        return Ok(pass);
                    } else {
                        // List what fits, up to a bound between the last listed item and the next, then hand
                        // the rest back as one fingerprint. `cut < upper` since `count > allowance`.
                        let cut = lower + allowance;
                        let bound = Bound::between(&storage.item(cut - 1)?, &storage.item(cut)?);
                        write_id_list(storage, &mut pass.reply, lower, cut, &bound)?;
                        let rest = storage.fingerprint(cut, n)?;
                        pass.reply.fingerprint(&Bound::INFINITY, &rest);
                        return Ok(pass);
                    }
                }
            },
        }
        prev_index = upper;
        prev_bound = range.upper;
    }
    Ok(pass)
}

/// Writes the owed Skip, if any, up to `bound`.
fn flush_skip(reply: &mut Encoder, skip_owed: &mut bool, bound: &Bound) {
    if *skip_owed {
        reply.skip(bound);
        *skip_owed = false;
    }
}

/// Ends a message that reached the frame limit: everything from `bound` (index `lower`) on is sent back as one
/// fingerprint, so the peer takes it up again in the next round.
fn close_early<S: ReconcileStorage>(
    storage: &S,
    reply: &mut Encoder,
    skip_owed: &mut bool,
    bound: &Bound,
    lower: usize,
    n: usize,
) -> Result<(), S::Error> {
    flush_skip(reply, skip_owed, bound);
    let rest = storage.fingerprint(lower, n)?;
    reply.fingerprint(&Bound::INFINITY, &rest);
    Ok(())
}

/// Answers a range whose fingerprints differ: an id list when we hold few items in it, otherwise
/// `config.buckets` fingerprints of equal-sized sub-ranges that together cover it.
fn split<S: ReconcileStorage>(
    storage: &S,
    config: &ReconcileConfig,
    reply: &mut Encoder,
    lower: usize,
    upper: usize,
    upper_bound: &Bound,
) -> Result<(), S::Error> {
    let count = upper - lower;
    if count < config.id_list_threshold {
        return write_id_list(storage, reply, lower, upper, upper_bound);
    }
    let buckets = config.buckets;
    let per_bucket = count / buckets;
    let with_extra = count % buckets;
    let mut start = lower;
    for bucket in 0..buckets {
        let end = start + per_bucket + usize::from(bucket < with_extra);
        let fingerprint = storage.fingerprint(start, end)?;
        let bound = if end == upper {
            *upper_bound
        } else {
            Bound::between(&storage.item(end - 1)?, &storage.item(end)?)
        };
        reply.fingerprint(&bound, &fingerprint);
        start = end;
    }
    Ok(())
}

fn write_id_list<S: ReconcileStorage>(
    storage: &S,
    reply: &mut Encoder,
    lower: usize,
    upper: usize,
    upper_bound: &Bound,
) -> Result<(), S::Error> {
    reply.id_list_header(upper_bound, upper - lower);
    storage.for_each(lower, upper, &mut |item| {
        reply.id(&item.id);
        ControlFlow::Continue(())
    })
}

/// The initiator's base case: the peer listed all its ids in the range, so the difference is known.
fn compare_id_list<S: ReconcileStorage>(
    storage: &S,
    lower: usize,
    upper: usize,
    theirs: &[RecordId],
    pass: &mut Pass,
) -> Result<(), S::Error> {
    let their_set: BTreeSet<&RecordId> = theirs.iter().collect();
    let mut ours = BTreeSet::new();
    storage.for_each(lower, upper, &mut |item| {
        if !their_set.contains(&item.id) {
            pass.have.push(item.id);
        }
        ours.insert(item.id);
        ControlFlow::Continue(())
    })?;
    pass.need
        .extend(theirs.iter().filter(|id| !ours.contains(*id)).copied());
    Ok(())
}

fn storage_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> ReconcileError {
    ReconcileError::Storage(Box::new(error))
}

/// Where an [`Initiator`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitiatorStatus {
    /// [`Initiator::initiate`] not called yet.
    NotStarted,
    /// A message was sent; waiting for the answer.
    Waiting,
    /// Both sides' differences are known: [`Initiator::have`] and [`Initiator::need`] are complete.
    Complete,
    /// Stopped early because [`ReconcileConfig::max_need`] ids were found; run another session later for
    /// the rest.
    Truncated,
    /// A message was refused or the storage failed; the session is over.
    Failed,
}

/// What the initiator learned from one message, and what to send next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Ids we hold that the peer lacks, first found in this message: send those records.
    pub have: Vec<RecordId>,
    /// Ids the peer holds that we lack, first found in this message: request those records.
    pub need: Vec<RecordId>,
    /// The next message for the peer, or `None` when the session is over (see [`Initiator::status`]).
    pub reply: Option<Vec<u8>>,
}

/// The side that starts a session and learns both differences.
///
/// Call [`Initiator::initiate`], send its bytes, then feed each answer to [`Initiator::handle`] and send the
/// reply it returns, until it returns none. A refused message ends the session with an error and leaves
/// [`Initiator::have`] and [`Initiator::need`] as they were.
#[derive(Clone, Debug)]
pub struct Initiator {
    config: ReconcileConfig,
    status: InitiatorStatus,
    rounds: u32,
    have: BTreeSet<RecordId>,
    need: BTreeSet<RecordId>,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Initiator {
    /// A session with the given limits.
    pub fn new(config: ReconcileConfig) -> Result<Self, ReconcileConfigError> {
        config.validate()?;
        Ok(Initiator {
            config,
            status: InitiatorStatus::NotStarted,
            rounds: 0,
            have: BTreeSet::new(),
            need: BTreeSet::new(),
            bytes_sent: 0,
            bytes_received: 0,
        })
    }

    /// The first message: the whole local set, split into fingerprinted buckets (or listed, when small).
    pub fn initiate<S: ReconcileStorage>(
        &mut self,
        storage: &S,
    ) -> Result<Vec<u8>, ReconcileError> {
        if self.status != InitiatorStatus::NotStarted {
            return Err(ReconcileError::AlreadyStarted);
        }
        let n = storage.size().map_err(storage_error)?;
        let mut reply = Encoder::new();
        let result = split(storage, &self.config, &mut reply, 0, n, &Bound::INFINITY);
        if let Err(error) = result {
            self.status = InitiatorStatus::Failed;
            return Err(storage_error(error));
        }
        let bytes = reply.finish();
        self.rounds = 1;
        self.bytes_sent += bytes.len() as u64;
        self.status = InitiatorStatus::Waiting;
        Ok(bytes)
    }

    /// Takes the responder's answer: returns the differences it revealed and the next message, if any.
    pub fn handle<S: ReconcileStorage>(
        &mut self,
        storage: &S,
        received: &[u8],
    ) -> Result<Step, ReconcileError> {
        match self.status {
            InitiatorStatus::NotStarted => return Err(ReconcileError::NotStarted),
            InitiatorStatus::Waiting => {}
            InitiatorStatus::Complete | InitiatorStatus::Truncated | InitiatorStatus::Failed => {
                return Err(ReconcileError::Finished);
            }
        }
        match self.step(storage, received) {
            Ok(step) => Ok(step),
            Err(error) => {
                self.status = InitiatorStatus::Failed;
                Err(error)
            }
        }
    }

    fn step<S: ReconcileStorage>(
        &mut self,
        storage: &S,
        received: &[u8],
    ) -> Result<Step, ReconcileError> {
        let message = message::decode(received)?;
        let pass =
            process(storage, &self.config, Role::Initiator, &message).map_err(storage_error)?;
        let mut have: Vec<RecordId> = pass
            .have
            .into_iter()
            .filter(|id| !self.have.contains(id))
            .collect();
        have.sort_unstable();
        have.dedup();
        let mut need: Vec<RecordId> = pass
            .need
            .into_iter()
            .filter(|id| !self.need.contains(id))
            .collect();
        need.sort_unstable();
        need.dedup();
        let room = self.config.max_need.saturating_sub(self.need.len());
        let truncated = need.len() > room;
        need.truncate(room);
        let bytes = pass.reply.finish();
        let finished = truncated || bytes.len() == 1;
        if !finished && self.rounds >= self.config.max_rounds {
            return Err(ReconcileError::TooManyRounds {
                max: self.config.max_rounds,
            });
        }

        // The message was good: apply it.
        self.bytes_received += received.len() as u64;
        self.have.extend(have.iter().copied());
        self.need.extend(need.iter().copied());
        let reply = if finished {
            self.status = if truncated {
                InitiatorStatus::Truncated
            } else {
                InitiatorStatus::Complete
            };
            None
        } else {
            self.rounds += 1;
            self.bytes_sent += bytes.len() as u64;
            Some(bytes)
        };
        Ok(Step { have, need, reply })
    }

    /// Where the session is.
    pub fn status(&self) -> InitiatorStatus {
        self.status
    }

    /// Whether the session is over (complete, truncated or failed).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status,
            InitiatorStatus::Complete | InitiatorStatus::Truncated | InitiatorStatus::Failed
        )
    }

    /// Every id found so far that we hold and the peer lacks.
    pub fn have(&self) -> &BTreeSet<RecordId> {
        &self.have
    }

    /// Every id found so far that the peer holds and we lack.
    pub fn need(&self) -> &BTreeSet<RecordId> {
        &self.need
    }

    /// Messages sent, the first included.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Bytes of the messages sent.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Bytes of the messages received and accepted.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}

/// The side that answers a session. It learns nothing itself (the initiator sends what it lacks); it answers
/// each message until the initiator stops sending.
#[derive(Clone, Debug)]
pub struct Responder {
    config: ReconcileConfig,
    rounds: u32,
    failed: bool,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Responder {
    /// A session with the given limits.
    pub fn new(config: ReconcileConfig) -> Result<Self, ReconcileConfigError> {
        config.validate()?;
        Ok(Responder {
            config,
            rounds: 0,
            failed: false,
            bytes_sent: 0,
            bytes_received: 0,
        })
    }

    /// Answers one message of the initiator. A refused message ends the session with an error.
    pub fn handle<S: ReconcileStorage>(
        &mut self,
        storage: &S,
        received: &[u8],
    ) -> Result<Vec<u8>, ReconcileError> {
        if self.failed {
            return Err(ReconcileError::Finished);
        }
        let result = self.answer(storage, received);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn answer<S: ReconcileStorage>(
        &mut self,
        storage: &S,
        received: &[u8],
    ) -> Result<Vec<u8>, ReconcileError> {
        if self.rounds >= self.config.max_rounds {
            return Err(ReconcileError::TooManyRounds {
                max: self.config.max_rounds,
            });
        }
        let message = message::decode(received)?;
        let pass =
            process(storage, &self.config, Role::Responder, &message).map_err(storage_error)?;
        let bytes = pass.reply.finish();
        self.rounds += 1;
        self.bytes_received += received.len() as u64;
        self.bytes_sent += bytes.len() as u64;
        Ok(bytes)
    }

    /// Messages answered.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Whether a refused message ended the session.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Bytes of the answers sent.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Bytes of the messages received and accepted.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }
}
