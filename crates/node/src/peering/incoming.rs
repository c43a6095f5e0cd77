//! Records a peer sent: validated with the one validation function, admitted, stored.

use kolokol_core::keys::NodeId;
use kolokol_core::record::{RecordId, SignedRecord, ValidationContext, validate_record};

use crate::admission::admit;
use crate::clock::unix_now;
use crate::context::Inner;

/// Validate each record from a peer with the one validation function, admit it, and store the good ones. Returns the
/// records that were new here and how many were invalid (admission refusals are not held against the peer).
pub(super) async fn store_incoming(
    inner: &Inner,
    from: &NodeId,
    records: Vec<Vec<u8>>,
) -> (Vec<SignedRecord>, u32) {
    let ctx = ValidationContext {
        network: inner.network.clone(),
        now_unix: unix_now(),
    };
    let mut refused = 0;
    let mut valid = Vec::new();
    for bytes in records {
        match validate_record(&bytes, &ctx) {
            Ok(record) => valid.push(record),
            Err(error) => {
                refused += 1;
                inner
                    .admission
                    .invalid(Some(RecordId::of_signed_bytes(&bytes)));
                tracing::warn!(peer = %from, %error, "refused an invalid record");
            }
        }
    }
    if valid.is_empty() {
        return (Vec::new(), refused);
    }
    // Admission and storage of the whole batch are one job on the catalog thread.
    let rules = inner.admission.rules(true);
    let judged = inner
        .catalog
        .run(move |catalog| {
            let now = unix_now();
            Ok(valid
                .into_iter()
                .map(|record| {
                    let verdict = admit(catalog, rules, &record, now)
                        .map(|()| catalog.insert_record(&record, now));
                    (record, verdict)
                })
                .collect::<Vec<_>>())
        })
        .await;
    let judged = match judged {
        Ok(judged) => judged,
        Err(error) => {
            tracing::warn!(%error, "cannot store records from a peer");
            return (Vec::new(), refused);
        }
    };
    let mut new = Vec::new();
    for (record, verdict) in judged {
        match verdict {
            // Admission refusals (blocked, rate, cap, unchecked) are not held against the peer: it cannot know this
            // node's limits and blocks.
            Err(refusal) => {
                inner.admission.refused(record.id(), refusal);
                tracing::debug!(peer = %from, author = %record.body().author, ?refusal, "record not admitted");
            }
            Ok(Ok(true)) => {
                tracing::info!(peer = %from, id = %record.id(), title = %record.body().title, "new record");
                new.push(record);
            }
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot store a record"),
        }
    }
    (new, refused)
}
