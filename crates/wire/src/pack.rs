//! Packing record bytes into messages that respect the protocol's caps.
//!
//! A peer asks for records (`Fetch`, `FetchAuthor`); the driver loads them from its store and turns them into
//! `Records` messages here. [`RecordPacker`] works one record at a time, so a driver never needs more than one
//! message worth of records in memory.

use kolokol_core::record::MAX_RECORD_BYTES;

use crate::message::{MAX_RECORDS_PER_MESSAGE, Message};

/// Encoded size of a `Records` message apart from its records: `d7:recordsl` + `e1:t7:recordse`.
pub const RECORDS_MESSAGE_OVERHEAD: usize = 25;

/// Why records could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// A record is larger than `MAX_RECORD_BYTES`; a valid store never holds one.
    #[error("record of {len} bytes exceeds the record cap of {max}")]
    RecordTooLarge {
        /// The record's size.
        len: usize,
        /// `MAX_RECORD_BYTES`.
        max: usize,
    },
    /// A single record does not fit in a message of the given size.
    #[error("record of {len} bytes does not fit in a {max_message_bytes}-byte message")]
    DoesNotFit {
        /// The record's size.
        len: usize,
        /// The message size limit used for packing.
        max_message_bytes: usize,
    },
}

/// Size a record adds to an encoded `Records` message: `<decimal length>:<bytes>`.
pub fn encoded_record_size(len: usize) -> usize {
    let mut digits = 1;
    let mut rest = len / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    digits + 1 + len
}

/// Groups records into `Records` messages whose encoding stays within `max_message_bytes` and
/// [`MAX_RECORDS_PER_MESSAGE`].
#[derive(Debug)]
pub struct RecordPacker {
    max_message_bytes: usize,
    records: Vec<Vec<u8>>,
    encoded_size: usize,
}

impl RecordPacker {
    /// A packer for messages of at most `max_message_bytes` (use the connection's
    /// `WireConfig::max_message_bytes`).
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            records: Vec::new(),
            encoded_size: RECORDS_MESSAGE_OVERHEAD,
        }
    }

    /// Adds a record; returns a full message to send when the record did not fit in the current one.
    pub fn push(&mut self, record: Vec<u8>) -> Result<Option<Message>, PackError> {
        if record.len() > MAX_RECORD_BYTES {
            return Err(PackError::RecordTooLarge {
                len: record.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let size = encoded_record_size(record.len());
        if RECORDS_MESSAGE_OVERHEAD + size > self.max_message_bytes {
            return Err(PackError::DoesNotFit {
                len: record.len(),
                max_message_bytes: self.max_message_bytes,
            });
        }
        let full = self.encoded_size + size > self.max_message_bytes
            || self.records.len() == MAX_RECORDS_PER_MESSAGE;
        let ready = if full { self.take() } else { None };
        self.encoded_size += size;
        self.records.push(record);
        Ok(ready)
    }

    /// The last, partly filled message, if any record is left.
    pub fn finish(mut self) -> Option<Message> {
        self.take()
    }

    fn take(&mut self) -> Option<Message> {
        if self.records.is_empty() {
            return None;
        }
        self.encoded_size = RECORDS_MESSAGE_OVERHEAD;
        Some(Message::Records {
            records: std::mem::take(&mut self.records),
        })
    }
}

/// Packs all `records` at once; see [`RecordPacker`] to stream them instead.
pub fn pack_records(
    records: impl IntoIterator<Item = Vec<u8>>,
    max_message_bytes: usize,
) -> Result<Vec<Message>, PackError> {
    let mut packer = RecordPacker::new(max_message_bytes);
    let mut messages = Vec::new();
    for record in records {
        messages.extend(packer.push(record)?);
    }
    messages.extend(packer.finish());
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn overhead_matches_encoding() {
        let message = Message::Records {
            records: vec![vec![7u8; 10]],
        };
        let encoded = message.encode().unwrap();
        assert_eq!(
            encoded.len(),
            RECORDS_MESSAGE_OVERHEAD + encoded_record_size(10)
        );
    }

    #[test]
    fn refuses_oversized_record() {
        let mut packer = RecordPacker::new(1024 * 1024);
        let error = packer.push(vec![0; MAX_RECORD_BYTES + 1]).unwrap_err();
        assert!(matches!(error, PackError::RecordTooLarge { .. }));
        let mut tiny = RecordPacker::new(100);
        assert!(matches!(
            tiny.push(vec![0; 200]).unwrap_err(),
            PackError::DoesNotFit { .. }
        ));
    }

    proptest! {
        #[test]
        fn packed_messages_fit_and_keep_order(
            sizes in prop::collection::vec(0usize..=MAX_RECORD_BYTES, 0..40),
            max in 70_000usize..400_000,
        ) {
            let records: Vec<Vec<u8>> =
                sizes.iter().enumerate().map(|(i, &n)| vec![(i % 251) as u8; n]).collect();
            let messages = pack_records(records.clone(), max).unwrap();
            let mut unpacked = Vec::new();
            for message in messages {
                let encoded = message.encode().unwrap();
                prop_assert!(encoded.len() <= max);
                match message {
                    Message::Records { records } => unpacked.extend(records),
                    other => prop_assert!(false, "unexpected {:?}", other.type_tag()),
                }
            }
            prop_assert_eq!(unpacked, records);
        }
    }
}
