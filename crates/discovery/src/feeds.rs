//! Author feeds on the DHT: putting and reading the BEP 44 mutable item that names an author's latest record.
//!
//! The value format and the salt are in [`crate::feed`]. Reading is defensive: `mainline` already drops items
//! whose signature does not verify or whose key and salt do not match the target; every item is then checked
//! again here with strict Ed25519 verification, and its value must decode as a feed head of our network. An
//! item that fails any check is ignored with a log line. Of the items that pass, the one with the largest
//! sequence number wins (a DHT node may hold an old one).

use kolokol_core::{Keypair, PublicKey};
use mainline::{MutableItem, SigningKey};

use crate::dht::Dht;
use crate::feed::{
    FeedEntry, FeedHead, FeedHeadError, bep44_signed_bytes, decode_feed_value, encode_feed_value,
    feed_salt,
};

/// Why a feed head was not put.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Head(#[from] FeedHeadError),
    #[error("sequence number {seq} is not larger than the one already in the DHT ({existing})")]
    StaleSeq { seq: i64, existing: i64 },
    #[error("sequence number must not be negative, got {0}")]
    NegativeSeq(i64),
    #[error("the DHT refused the feed head: {0}")]
    Put(#[source] mainline::errors::PutMutableError),
}

/// The result of a successful put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedPut {
    /// How many DHT nodes acknowledged storing the item.
    pub stored_at: u32,
}

impl Dht {
    /// Puts `head` as `author`'s feed head in our network with sequence number `seq`.
    ///
    /// The DHT is read first: if it already holds a larger `seq`, or the same `seq` with another value, nothing
    /// is written and [`FeedError::StaleSeq`] says what is there (a node restored from a backup learns its
    /// sequence number this way; [`crate::feed::next_feed_seq`] picks a good next one). Putting the same head
    /// with the same `seq` again is allowed: that is how a feed is kept alive, since DHT nodes forget items
    /// after a while (libtorrent after two hours). No compare-and-swap is used: one author writes from one
    /// node, and a CAS would fail on every DHT node that still holds an older item.
    pub async fn put_feed(
        &self,
        author: &Keypair,
        head: FeedHead,
        seq: i64,
    ) -> Result<FeedPut, FeedError> {
        if seq < 0 {
            return Err(FeedError::NegativeSeq(seq));
        }
        let value = encode_feed_value(self.network(), &head)?;
        let salt = feed_salt(self.network());
        if let Some(existing) = self
            .mainline()
            .get_mutable_most_recent(author.public().as_bytes(), Some(&salt))
            .await
            && (existing.seq() > seq
                || (existing.seq() == seq && existing.value() != value.as_slice()))
        {
            return Err(FeedError::StaleSeq {
                seq,
                existing: existing.seq(),
            });
        }
        // ed25519-dalek keys of `mainline` and of kolokol-core may be different crate versions: go through the
        // 32-byte secret seed, which both define the same way (RFC 8032).
        let signer = SigningKey::from_bytes(&author.secret_bytes());
        let item = MutableItem::new(signer, &value, seq, Some(&salt));
        let outcome = self
            .mainline()
            .put_mutable(item, None)
            .await
            .map_err(FeedError::Put)?;
        Ok(FeedPut {
            stored_at: outcome.stored_at,
        })
    }

    /// Reads `author`'s feed head in our network: the valid item with the largest sequence number, or `None`
    /// if there is none (nothing stored, or only items that fail the checks; each is logged).
    pub async fn get_feed(&self, author: PublicKey) -> Option<FeedEntry> {
        let salt = feed_salt(self.network());
        let mut stream = self
            .mainline()
            .get_mutable(author.as_bytes(), Some(&salt), None);
        let mut best: Option<FeedEntry> = None;
        let read = async {
            while let Some(item) = crate::dht::next_item(&mut stream).await {
                match check_item(&item, &author, &salt, self.network()) {
                    Ok(entry) => {
                        if best.is_none_or(|b| entry.seq > b.seq) {
                            best = Some(entry);
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(%author, seq = item.seq(), %reason, "ignoring a feed item from the DHT");
                    }
                }
            }
        };
        let _ = tokio::time::timeout(crate::dht::LOOKUP_DEADLINE, read).await;
        best
    }
}

/// Checks one item received for `author`'s feed; the error says why it is ignored.
pub(crate) fn check_item(
    item: &MutableItem,
    author: &PublicKey,
    salt: &[u8],
    network: &str,
) -> Result<FeedEntry, String> {
    if item.key() != author.as_bytes() {
        return Err("signed by another key".to_owned());
    }
    if item.salt() != Some(salt) {
        return Err("wrong salt".to_owned());
    }
    let signed = bep44_signed_bytes(salt, item.seq(), item.value());
    author
        .verify(&signed, item.signature())
        .map_err(|e| format!("signature: {e}"))?;
    if item.seq() < 0 {
        return Err("negative sequence number".to_owned());
    }
    let head = decode_feed_value(item.value(), network).map_err(|e| e.to_string())?;
    Ok(FeedEntry {
        head,
        seq: item.seq(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kolokol_core::RecordId;

    fn head() -> FeedHead {
        FeedHead {
            latest: RecordId([3; 32]),
            count: 2,
        }
    }

    #[test]
    fn items_signed_by_mainline_pass_strict_checks() {
        let author = Keypair::from_secret_bytes([9; 32]);
        let salt = feed_salt("kolokol");
        let value = encode_feed_value("kolokol", &head()).unwrap();
        let item = MutableItem::new(
            SigningKey::from_bytes(&author.secret_bytes()),
            &value,
            5,
            Some(&salt),
        );
        assert_eq!(
            item.key(),
            author.public().as_bytes(),
            "same public key through both crates"
        );
        assert_eq!(
            check_item(&item, &author.public(), &salt, "kolokol"),
            Ok(FeedEntry {
                head: head(),
                seq: 5
            })
        );
    }

    #[test]
    fn bad_items_are_refused() {
        let author = Keypair::from_secret_bytes([9; 32]);
        let other = Keypair::from_secret_bytes([8; 32]);
        let salt = feed_salt("kolokol");
        let value = encode_feed_value("kolokol", &head()).unwrap();
        let sign = |key: &Keypair, value: &[u8], salt: &[u8]| {
            MutableItem::new(
                SigningKey::from_bytes(&key.secret_bytes()),
                value,
                5,
                Some(salt),
            )
        };
        // Another author's item.
        assert!(
            check_item(
                &sign(&other, &value, &salt),
                &author.public(),
                &salt,
                "kolokol"
            )
            .is_err()
        );
        // A value of another network, correctly signed under our salt.
        let foreign = encode_feed_value("elsewhere", &head()).unwrap();
        let err = check_item(
            &sign(&author, &foreign, &salt),
            &author.public(),
            &salt,
            "kolokol",
        )
        .unwrap_err();
        assert!(err.contains("another network"), "{err}");
        // Garbage value.
        assert!(
            check_item(
                &sign(&author, b"garbage", &salt),
                &author.public(),
                &salt,
                "kolokol"
            )
            .is_err()
        );
        // A forged signature.
        let good = sign(&author, &value, &salt);
        let mut sig = *good.signature();
        sig[0] ^= 1;
        let forged = MutableItem::new_signed_unchecked(*good.key(), sig, &value, 5, Some(&salt));
        let err = check_item(&forged, &author.public(), &salt, "kolokol").unwrap_err();
        assert!(err.contains("signature"), "{err}");
        // Right key, other salt.
        let other_salt = feed_salt("elsewhere");
        assert!(
            check_item(
                &sign(&author, &value, &other_salt),
                &author.public(),
                &salt,
                "kolokol"
            )
            .is_err()
        );
    }
}
