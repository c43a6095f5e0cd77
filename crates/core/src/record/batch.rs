//! Validation of records in bulk (a sync, a bundle): the same [`validate_record`] for each, spread over the
//! machine's cores. Checking a signature costs tens of microseconds, which at tens of thousands of records a second
//! is more than one core has; nothing else is shared between records, so the batch splits into one chunk per core.

use super::{RecordError, SignedRecord, ValidationContext, validate_record};

/// Below this many records a batch is validated on the calling thread (starting threads would cost more).
const PARALLEL_FROM: usize = 64;

/// [`validate_record`] for each of `batch`, answers in the same order.
pub fn validate_records(
    batch: &[Vec<u8>],
    ctx: &ValidationContext,
) -> Vec<Result<SignedRecord, RecordError>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || batch.len() < PARALLEL_FROM {
        return batch.iter().map(|b| validate_record(b, ctx)).collect();
    }
    let chunk = batch.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let workers: Vec<_> = batch
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|b| validate_record(b, ctx))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(results) => results,
                // validate_record does not panic on any input (fuzzed); if it ever did, re-raise it here.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;
    use crate::keys::Keypair;
    use crate::record::{FileEntry, InfoHash, RecordBody, sign_record};

    #[test]
    fn a_batch_gets_the_answers_of_one_by_one_validation_in_order() {
        let key = Keypair::from_secret_bytes([3; 32]);
        let mut batch: Vec<Vec<u8>> = (0..200u64)
            .map(|i| {
                let body = RecordBody {
                    network: "kolokol".into(),
                    author: key.public(),
                    created: 1_000 + i,
                    title: format!("запись {i}"),
                    description: String::new(),
                    tags: vec![],
                    lang: None,
                    files: vec![FileEntry {
                        path: "a".into(),
                        size: 1,
                        mime: "text/plain".into(),
                    }],
                    infohash: InfoHash([1; 20]),
                    thumbnail: None,
                };
                sign_record(body, &key).unwrap().bytes().to_vec()
            })
            .collect();
        // Forged, truncated and foreign-looking entries among the good ones, in both halves.
        for i in [0, 57, 150, 199] {
            let last = batch[i].len() - 1;
            batch[i][last - 5] ^= 1;
        }
        batch[99].truncate(10);
        let ctx = ValidationContext {
            network: "kolokol".into(),
            now_unix: 10_000,
        };
        let together = validate_records(&batch, &ctx);
        assert_eq!(together.len(), batch.len());
        for (bytes, answer) in batch.iter().zip(&together) {
            match (validate_record(bytes, &ctx), answer) {
                (Ok(one), Ok(many)) => assert_eq!(one.id(), many.id()),
                (Err(one), Err(many)) => assert_eq!(one.to_string(), many.to_string()),
                (one, many) => panic!("differ: {one:?} / {many:?}"),
            }
        }
        assert_eq!(together.iter().filter(|r| r.is_err()).count(), 5);
    }
}
