//! Author feeds on the DHT: putting and reading the BEP 44 mutable item that names an author's latest record.
//!
//! The value format and the salt are in [`crate::feed`]. Reading is defensive: `kolokol-dht` already drops
//! items whose signature does not verify or whose key and salt do not match the target; every item is then
//! checked again here (strict Ed25519 through kolokol-core's key type), and its value must decode as a feed head
//! of our network. An item that fails any check is ignored with a log line. Of the items that pass, the one
//! with the largest sequence number wins (a DHT node may hold an old one).

use ed25519_dalek::SigningKey;
use kolokol_core::{Keypair, PublicKey};
use kolokol_dht::{MutableItem, NetError, bencode_bytes};

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
    Put(#[source] NetError),
    #[error("no DHT node stored the feed head")]
    NotStored,
    #[error("cannot sign the feed head: {0}")]
    Sign(#[source] kolokol_dht::ItemError),
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
        if let Some(existing) = self.read_items(author, &salt).await.into_iter().next()
            && (existing.seq > seq
                || (existing.seq == seq && existing.value_as_bytes() != Some(value.as_slice())))
        {
            return Err(FeedError::StaleSeq {
                seq,
                existing: existing.seq,
            });
        }
        // kolokol-core and kolokol-dht may use different ed25519-dalek types: go through the 32-byte secret
        // seed, which both define the same way (RFC 8032).
        let signer = SigningKey::from_bytes(&author.secret_bytes());
        let item = MutableItem::sign(&signer, bencode_bytes(&value), seq, salt)
            .map_err(FeedError::Sign)?;
        let put = self.inner().put_mutable(item, None);
        let stored_at = match tokio::time::timeout(crate::dht::LOOKUP_DEADLINE, put).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(FeedError::Put(e)),
            Err(_) => 0,
        };
        if stored_at == 0 {
            return Err(FeedError::NotStored);
        }
        Ok(FeedPut { stored_at })
    }

    /// Every item the DHT holds for `author`'s feed salt, largest `seq` first (not yet checked here).
    async fn read_items(&self, author: &Keypair, salt: &[u8]) -> Vec<MutableItem> {
        let get = self.inner().get_mutable(*author.public().as_bytes(), salt);
        match tokio::time::timeout(crate::dht::LOOKUP_DEADLINE, get).await {
            Ok(Ok(items)) => items,
            _ => Vec::new(),
        }
    }

    /// Reads `author`'s feed head in our network: the valid item with the largest sequence number, or `None`
    /// if there is none (nothing stored, or only items that fail the checks; each is logged).
    pub async fn get_feed(&self, author: PublicKey) -> Option<FeedEntry> {
        let salt = feed_salt(self.network());
        let get = self.inner().get_mutable(*author.as_bytes(), &salt);
        let items = match tokio::time::timeout(crate::dht::LOOKUP_DEADLINE, get).await {
            Ok(Ok(items)) => items,
            _ => Vec::new(),
        };
        let mut best: Option<FeedEntry> = None;
        for item in &items {
            match check_item(item, &author, &salt, self.network()) {
                Ok(entry) => {
                    if best.is_none_or(|b| entry.seq > b.seq) {
                        best = Some(entry);
                    }
                }
                Err(reason) => {
                    tracing::warn!(%author, seq = item.seq, %reason, "ignoring a feed item from the DHT");
                }
            }
        }
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
    if &item.key != author.as_bytes() {
        return Err("signed by another key".to_owned());
    }
    if item.salt != salt {
        return Err("wrong salt".to_owned());
    }
    let value = item
        .value_as_bytes()
        .ok_or_else(|| "value is not a byte string".to_owned())?;
    let signed = bep44_signed_bytes(salt, item.seq, value);
    author
        .verify(&signed, &item.signature)
        .map_err(|e| format!("signature: {e}"))?;
    if item.seq < 0 {
        return Err("negative sequence number".to_owned());
    }
    let head = decode_feed_value(value, network).map_err(|e| e.to_string())?;
    Ok(FeedEntry {
        head,
        seq: item.seq,
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
    fn items_signed_by_kolokol_dht_pass_strict_checks() {
        let author = Keypair::from_secret_bytes([9; 32]);
        let salt = feed_salt("kolokol");
        let value = encode_feed_value("kolokol", &head()).unwrap();
        let item = MutableItem::sign(
            &SigningKey::from_bytes(&author.secret_bytes()),
            bencode_bytes(&value),
            5,
            salt.clone(),
        )
        .unwrap();
        assert_eq!(
            &item.key,
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
            MutableItem::sign(
                &SigningKey::from_bytes(&key.secret_bytes()),
                bencode_bytes(value),
                5,
                salt.to_vec(),
            )
            .unwrap()
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
        let mut forged = good.clone();
        forged.signature[0] ^= 1;
        let err = check_item(&forged, &author.public(), &salt, "kolokol").unwrap_err();
        assert!(err.contains("signature"), "{err}");
        // A value that is not a byte string (a dictionary as `v` itself).
        let dict = MutableItem::sign(
            &SigningKey::from_bytes(&author.secret_bytes()),
            value.clone(),
            5,
            salt.clone(),
        )
        .unwrap();
        let err = check_item(&dict, &author.public(), &salt, "kolokol").unwrap_err();
        assert!(err.contains("byte string"), "{err}");
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
