//! The record policy owner: the one `kolokol_core::policy::RecordPolicy` of the node (the same state machine the
//! simulator measures), which decides which records to relay and to whom, what to serve, what to fetch, when to
//! reconcile and who sends too many invalid records.
//!
//! A narrow handle: events go in and decisions come out of [`RecordPolicyOwner::handle`], and the few questions the
//! node asks (is a record held back?) are methods. The lock never leaves this module, so it can never be held across
//! an `.await` nor together with another owner's lock. Carrying the decisions out (messages, bans, reconciliation
//! sessions) is the `relaying` module's work; the connections and publishing feed the events.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::{InEvent, OutEvent, PolicyConfig, PolicyConfigError, RecordPolicy};
use kolokol_core::record::RecordId;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Notify;

/// The record policy of this node, behind its lock.
pub(crate) struct RecordPolicyOwner {
    policy: Mutex<RecordPolicy<NodeId, StdRng>>,
    /// Wakes the timer task when the policy asks for a (possibly earlier) wake-up.
    timer_wake: Notify,
}

impl RecordPolicyOwner {
    /// The node's policy: `push_fanout` peers learn of each new record (whole when published here, by id when
    /// relayed), a reconciliation starts about every `reconcile_interval`, and a peer is cut off after
    /// `max_bad_records` invalid records.
    pub fn new(
        push_fanout: usize,
        reconcile_interval: Duration,
        max_bad_records: u32,
    ) -> Result<RecordPolicyOwner, PolicyConfigError> {
        let config = PolicyConfig {
            eager_fanout: 0,
            announce_fanout: push_fanout,
            reconcile_interval,
            max_bad_records,
            ..PolicyConfig::default()
        };
        let policy = RecordPolicy::new(config, StdRng::seed_from_u64(rand::random()))?;
        Ok(RecordPolicyOwner {
            policy: Mutex::new(policy),
            timer_wake: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, RecordPolicy<NodeId, StdRng>> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feed events (node time `now`) and return the policy's decisions, all of them, for the driver to merge into
    /// one message per peer and kind.
    pub fn handle(
        &self,
        events: impl IntoIterator<Item = InEvent<NodeId>>,
        now: Duration,
    ) -> Vec<OutEvent<NodeId>> {
        let mut policy = self.lock();
        events
            .into_iter()
            .flat_map(|event| policy.handle(event, now))
            .collect()
    }

    /// Whether a record published here still waits for a replica (and must not be offered or served).
    pub fn is_held_back(&self, id: &RecordId) -> bool {
        self.lock().is_held_back(id)
    }

    /// Drop held-back records from items about to be offered or served (one lock for the whole list).
    pub fn without_held_back<T>(&self, items: Vec<T>, id_of: impl Fn(&T) -> RecordId) -> Vec<T> {
        let policy = self.lock();
        items
            .into_iter()
            .filter(|item| !policy.is_held_back(&id_of(item)))
            .collect()
    }

    /// When the policy wants its next `Tick` (node time), if at all.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.lock().poll_timeout()
    }

    /// The policy asked for a wake-up: the timer task looks again.
    pub fn wake_timer(&self) {
        self.timer_wake.notify_one();
    }

    /// Resolves when [`RecordPolicyOwner::wake_timer`] was called.
    pub async fn timer_woken(&self) {
        self.timer_wake.notified().await
    }
}
