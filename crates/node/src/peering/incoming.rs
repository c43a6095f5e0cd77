//! Records a peer sent: validated with the one validation function, admitted, stored; what became of each goes to
//! the record policy.

use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::Verdict;
use kolokol_core::record::{RecordId, ValidationContext, validate_records};

use super::Peering;
use crate::admission::{Refusal, admit};
use crate::clock::unix_now;

/// What became of one record from a peer.
pub(super) struct Arrival {
    pub id: RecordId,
    /// How old it is by its signed creation time (zero if invalid or in the future).
    pub age: Duration,
    pub verdict: Verdict,
}

/// Validate each record from a peer with the one validation function, admit it, and store the good ones. Returns
/// what became of each, for the record policy (`kolokol_core::policy`), which decides what to relay, remembers what
/// was refused so that it is not fetched again, and counts invalid records against the peer. Admission refusals are
/// not held against the peer; a record this node could not check or store (a database error: admission fails
/// closed) is [`Verdict::Unchecked`], which the policy does not remember, so it can be fetched again.
pub(super) async fn store_incoming(
    peering: &Peering,
    from: &NodeId,
    records: Vec<Vec<u8>>,
) -> Vec<Arrival> {
    let now_unix = unix_now();
    let ctx = ValidationContext {
        network: peering.network.clone(),
        now_unix,
    };
    let mut arrivals = Vec::with_capacity(records.len());
    let mut valid = Vec::new();
    // Signature checks of a large batch (a sync) take both cores for a while: off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let results = validate_records(&records, &ctx);
        records.into_iter().zip(results).collect::<Vec<_>>()
    })
    .await;
    let checked = match checked {
        Ok(checked) => checked,
        Err(error) => {
            // Only when the node is stopping: nothing was checked, nothing is stored or remembered.
            tracing::warn!(%error, "cannot validate records from a peer");
            return arrivals;
        }
    };
    for (bytes, result) in checked {
        match result {
            Ok(record) => valid.push(record),
            Err(error) => {
                peering.admission.invalid();
                tracing::warn!(peer = %from, %error, "refused an invalid record");
                arrivals.push(Arrival {
                    id: RecordId::of_signed_bytes(&bytes),
                    age: Duration::ZERO,
                    verdict: Verdict::Invalid,
                });
            }
        }
    }
    if valid.is_empty() {
        return arrivals;
    }
    let age_of = |created: u64| Duration::from_secs(now_unix.saturating_sub(created));
    let ids: Vec<(RecordId, Duration)> = valid
        .iter()
        .map(|r| (r.id(), age_of(r.body().created)))
        .collect();
    // Admission and storage of the whole batch are one job on the catalog thread and one transaction: each record
    // is judged with the batch's earlier records counted, and a store error keeps none of them.
    let rules = peering.admission.rules(true);
    let judged = peering
        .catalog
        .run(move |catalog| {
            let now = unix_now();
            catalog.insert_batch(valid, now, |catalog, record| {
                admit(catalog, rules, record, now)
            })
        })
        .await;
    let judged = match judged {
        Ok(judged) => judged,
        Err(error) => {
            // Nothing was checked: nothing is stored, and nothing is remembered as refused.
            tracing::warn!(%error, "cannot store records from a peer");
            arrivals.extend(ids.into_iter().map(|(id, age)| Arrival {
                id,
                age,
                verdict: Verdict::Unchecked,
            }));
            return arrivals;
        }
    };
    for (record, verdict) in judged {
        let verdict = match verdict {
            // Admission refusals (blocked, rate, cap) are not held against the peer: it cannot know this node's
            // limits and blocks.
            Err(refusal) => {
                peering.admission.refused(refusal);
                tracing::debug!(peer = %from, author = %record.body().author, ?refusal, "record not admitted");
                verdict_of(refusal)
            }
            Ok(true) => {
                tracing::info!(peer = %from, "new record");
                tracing::debug!(peer = %from, id = %record.id(), title = %record.body().title, "new record");
                Verdict::Stored
            }
            Ok(false) => Verdict::Duplicate,
        };
        arrivals.push(Arrival {
            id: record.id(),
            age: age_of(record.body().created),
            verdict,
        });
    }
    arrivals
}

/// What the record policy is told of a refusal. A refusal because the catalog could not answer is not the record's
/// fault and must not be remembered (the policy would never fetch it again): it is [`Verdict::Unchecked`].
fn verdict_of(refusal: Refusal) -> Verdict {
    match refusal {
        Refusal::Unchecked => Verdict::Unchecked,
        Refusal::NotEnoughWork | Refusal::Blocked | Refusal::RateLimited | Refusal::AuthorFull => {
            Verdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admission fails closed, and the record policy must not remember such a refusal: the verdict the node feeds
    /// it for `Refusal::Unchecked` is the one it forgets.
    #[test]
    fn an_unchecked_refusal_is_not_remembered_by_the_policy() {
        use kolokol_core::policy::{InEvent, OutEvent, PolicyConfig, RecordPolicy};
        use rand::SeedableRng;
        let mut policy = RecordPolicy::<u32, _>::new(
            PolicyConfig::default(),
            rand::rngs::StdRng::seed_from_u64(1),
        )
        .unwrap();
        policy.handle(
            InEvent::PeerUp {
                peer: 1,
                outbound: false,
            },
            Duration::ZERO,
        );
        let unchecked = RecordId([7; 32]);
        let blocked = RecordId([8; 32]);
        for (id, refusal) in [(unchecked, Refusal::Unchecked), (blocked, Refusal::Blocked)] {
            policy.handle(
                InEvent::Received {
                    from: 1,
                    id,
                    age: Duration::ZERO,
                    verdict: verdict_of(refusal),
                },
                Duration::ZERO,
            );
        }
        assert!(!policy.was_refused(&unchecked));
        assert!(policy.was_refused(&blocked));
        let again = policy.handle(
            InEvent::Announced {
                from: 1,
                id: unchecked,
            },
            Duration::from_secs(1),
        );
        assert!(again.contains(&OutEvent::Request {
            from: 1,
            id: unchecked
        }));
        let not_again = policy.handle(
            InEvent::Announced {
                from: 1,
                id: blocked,
            },
            Duration::from_secs(1),
        );
        assert!(
            !not_again
                .iter()
                .any(|o| matches!(o, OutEvent::Request { .. }))
        );
    }
}
