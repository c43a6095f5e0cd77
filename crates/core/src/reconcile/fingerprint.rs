//! Range fingerprints, computed as Negentropy v1 does: SHA-256 over the sum of the ids modulo 2^256 (each id read
//! as a little-endian integer) followed by the item count as a varint, truncated to 16 bytes.
//!
//! Why a sum: it is incremental. A store keeps running sums ([`Accumulator`]) so the fingerprint of any range is
//! one subtraction and one hash, whatever the range's size. Why the count and the hash: a bare sum (or XOR) can be
//! matched by a different multiset with little effort and says nothing about how many items there are; hashing
//! the sum with the count makes two ranges with different contents collide only by finding ids whose sums agree
//! modulo 2^256, and ids are SHA-256 outputs of signed records that an attacker cannot choose freely. A
//! collision would only hide a difference from one session; the next session with another peer or other range
//! boundaries finds it.

use sha2::{Digest, Sha256};

use super::item::Item;
use super::varint;

/// Bytes of a fingerprint on the wire.
pub const FINGERPRINT_BYTES: usize = 16;

/// The fingerprint of a range of items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_BYTES]);

/// A running sum of ids modulo 2^256, as four little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Accumulator([u64; 4]);

impl Accumulator {
    /// The empty sum.
    pub const ZERO: Accumulator = Accumulator([0; 4]);

    fn limbs_of(id: &[u8; 32]) -> [u64; 4] {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(id.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(bytes);
        }
        limbs
    }

    /// Adds one item's id.
    pub fn add(&mut self, item: &Item) {
        self.add_sum(&Accumulator(Self::limbs_of(&item.id.0)));
    }

    /// Adds another sum.
    pub fn add_sum(&mut self, other: &Accumulator) {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            let (s1, c1) = a.overflowing_add(*b);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *a = s2;
            carry = c1 || c2;
        }
    }

    /// `self - other` modulo 2^256: the sum of a range from two running sums.
    pub fn minus(&self, other: &Accumulator) -> Accumulator {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for ((o, a), b) in out.iter_mut().zip(self.0.iter()).zip(other.0.iter()) {
            let (d1, b1) = a.overflowing_sub(*b);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *o = d2;
            borrow = b1 || b2;
        }
        Accumulator(out)
    }

    /// The sum as 32 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0.iter()) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// The fingerprint of a range whose ids sum to `self` and which holds `count` items.
    pub fn fingerprint(&self, count: u64) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(self.to_bytes());
        let mut count_bytes = Vec::with_capacity(varint::MAX_VARINT_BYTES);
        varint::write(count, &mut count_bytes);
        hasher.update(&count_bytes);
        let digest = hasher.finalize();
        let mut out = [0u8; FINGERPRINT_BYTES];
        out.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
        Fingerprint(out)
    }
}

/// The fingerprint of a sequence of items (no ordering needed: the sum commutes).
pub fn fingerprint_of<'a>(items: impl IntoIterator<Item = &'a Item>) -> Fingerprint {
    let mut sum = Accumulator::ZERO;
    let mut count = 0u64;
    for item in items {
        sum.add(item);
        count += 1;
    }
    sum.fingerprint(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordId;
    use proptest::prelude::*;

    fn item(id: [u8; 32]) -> Item {
        Item::new(1, RecordId(id))
    }

    #[test]
    fn sum_wraps_modulo_2_256() {
        let mut sum = Accumulator::ZERO;
        sum.add(&item([0xff; 32]));
        let mut one = [0u8; 32];
        one[0] = 1;
        sum.add(&item(one));
        assert_eq!(sum, Accumulator::ZERO);
    }

    #[test]
    fn carries_across_limbs() {
        let mut a = [0u8; 32];
        a[..8].copy_from_slice(&[0xff; 8]);
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut sum = Accumulator::ZERO;
        sum.add(&item(a));
        sum.add(&item(one));
        let mut expected = [0u8; 32];
        expected[8] = 1;
        assert_eq!(sum.to_bytes(), expected);
    }

    #[test]
    fn count_changes_the_fingerprint() {
        assert_ne!(
            Accumulator::ZERO.fingerprint(0),
            Accumulator::ZERO.fingerprint(1)
        );
    }

    #[test]
    fn empty_range_fingerprint_is_fixed() {
        // SHA-256 of 32 zero bytes followed by the varint 0 (one zero byte), first 16 bytes.
        let digest = Sha256::digest([0u8; 33]);
        assert_eq!(fingerprint_of([]).0[..], digest[..16]);
    }

    proptest! {
        #[test]
        fn order_does_not_matter_and_minus_undoes_add(ids in proptest::collection::vec(any::<[u8; 32]>(), 0..20)) {
            let items: Vec<Item> = ids.iter().map(|id| item(*id)).collect();
            let mut reversed = items.clone();
            reversed.reverse();
            prop_assert_eq!(fingerprint_of(&items), fingerprint_of(&reversed));

            let mut prefix = Accumulator::ZERO;
            let mut sums = vec![prefix];
            for it in &items {
                prefix.add(it);
                sums.push(prefix);
            }
            for from in 0..=items.len() {
                for to in from..=items.len() {
                    let direct = fingerprint_of(&items[from..to]);
                    let via_sums = sums[to].minus(&sums[from]).fingerprint((to - from) as u64);
                    prop_assert_eq!(direct, via_sums);
                }
            }
        }
    }
}
