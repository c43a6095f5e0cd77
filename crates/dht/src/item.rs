//! BEP 44 items: targets, signing and checking.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha1::{Digest, Sha1};

use crate::id::Id;
use crate::krpc::{MAX_ITEM_VALUE, MAX_SALT, mutable_signed_bytes};

/// A BEP 44 mutable item. `value` is the bencoded `v` as signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableItem {
    pub key: [u8; 32],
    pub signature: [u8; 64],
    pub seq: i64,
    pub salt: Vec<u8>,
    pub value: Vec<u8>,
}

/// Why an item is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("value larger than {MAX_ITEM_VALUE} bytes or not one bencoded value")]
    Value,
    #[error("salt longer than {MAX_SALT} bytes")]
    Salt,
    #[error("signature does not verify")]
    Signature,
    #[error("item does not belong to the target asked for")]
    Target,
}

/// `bytes` as a bencoded byte string: the `v` of an item whose value is those bytes.
pub fn bencode_bytes(bytes: &[u8]) -> Vec<u8> {
    crate::bencode::Bencode::Bytes(bytes.to_vec()).encode()
}

/// Target of a mutable item: SHA-1 of the public key and salt.
pub fn mutable_target(key: &[u8; 32], salt: &[u8]) -> Id {
    let mut h = Sha1::new();
    h.update(key);
    h.update(salt);
    Id(h.finalize().into())
}

/// Target of an immutable item: SHA-1 of its bencoded value.
pub fn immutable_target(value: &[u8]) -> Id {
    Id(Sha1::digest(value).into())
}

fn check_value(value: &[u8]) -> Result<(), ItemError> {
    if value.len() > MAX_ITEM_VALUE || crate::bencode::decode(value).is_err() {
        return Err(ItemError::Value);
    }
    Ok(())
}

impl MutableItem {
    /// Signs `value` (bencoded) with `signer`.
    pub fn sign(
        signer: &SigningKey,
        value: Vec<u8>,
        seq: i64,
        salt: Vec<u8>,
    ) -> Result<Self, ItemError> {
        check_value(&value)?;
        if salt.len() > MAX_SALT {
            return Err(ItemError::Salt);
        }
        let signature = signer.sign(&mutable_signed_bytes(&salt, seq, &value));
        Ok(MutableItem {
            key: signer.verifying_key().to_bytes(),
            signature: signature.to_bytes(),
            seq,
            salt,
            value,
        })
    }

    /// The content of `v` when it is a byte string (the usual shape: libtorrent's and `mainline`'s puts of
    /// bytes store them so), else `None`.
    pub fn value_as_bytes(&self) -> Option<&[u8]> {
        match crate::bencode::decode(&self.value) {
            Ok(crate::bencode::Value::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    pub fn target(&self) -> Id {
        mutable_target(&self.key, &self.salt)
    }

    /// Checks size, salt and signature (strict Ed25519: no small-order keys, canonical signatures).
    pub fn verify(&self) -> Result<(), ItemError> {
        check_value(&self.value)?;
        if self.salt.len() > MAX_SALT {
            return Err(ItemError::Salt);
        }
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| ItemError::Signature)?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(
            &mutable_signed_bytes(&self.salt, self.seq, &self.value),
            &signature,
        )
        .map_err(|_| ItemError::Signature)
    }
}

/// Checks an immutable value received for `target`.
pub fn check_immutable(target: &Id, value: &[u8]) -> Result<(), ItemError> {
    check_value(value)?;
    if immutable_target(value) != *target {
        return Err(ItemError::Target);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep44_test_vector_verifies() {
        // BEP 44 "test 1" (mutable, no salt) and "test 2" (salt "foobar").
        let key: [u8; 32] =
            hex::decode("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
                .unwrap()
                .try_into()
                .unwrap();
        let sig1: [u8; 64] = hex::decode("305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01").unwrap().try_into().unwrap();
        let item = MutableItem {
            key,
            signature: sig1,
            seq: 1,
            salt: Vec::new(),
            value: b"12:Hello World!".to_vec(),
        };
        assert_eq!(item.verify(), Ok(()));
        assert_eq!(
            hex::encode(item.target().0),
            "4a533d47ec9c7d95b1ad75f576cffc641853b750"
        );
        let sig2: [u8; 64] = hex::decode("6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08").unwrap().try_into().unwrap();
        let salted = MutableItem {
            signature: sig2,
            salt: b"foobar".to_vec(),
            ..item.clone()
        };
        assert_eq!(salted.verify(), Ok(()));
        assert_eq!(
            hex::encode(salted.target().0),
            "411eba73b6f087ca51a3795d9c8c938d365e32c1"
        );
        let tampered = MutableItem { seq: 2, ..item };
        assert_eq!(tampered.verify(), Err(ItemError::Signature));
    }

    #[test]
    fn signed_items_verify_and_immutable_targets_check() {
        let signer = SigningKey::from_bytes(&[9; 32]);
        let item = MutableItem::sign(&signer, bencode_bytes(b"abc"), 5, b"s".to_vec()).unwrap();
        assert_eq!(item.verify(), Ok(()));
        assert_eq!(item.value, b"3:abc");
        assert_eq!(item.value_as_bytes(), Some(&b"abc"[..]));
        let dict = MutableItem::sign(&signer, b"de".to_vec(), 5, Vec::new()).unwrap();
        assert_eq!(dict.value_as_bytes(), None);
        assert_eq!(
            MutableItem::sign(&signer, b"3:ab".to_vec(), 5, Vec::new()),
            Err(ItemError::Value)
        );
        let target = immutable_target(b"3:abc");
        assert_eq!(check_immutable(&target, b"3:abc"), Ok(()));
        assert_eq!(check_immutable(&target, b"3:abd"), Err(ItemError::Target));
    }
}
