//! A small, strict bencode reader and writer for metainfo (.torrent) files.
//!
//! Only what this crate needs: reading a whole document into a borrowed tree (with the raw bytes of
//! every dictionary, because the info-hash is the SHA-1 of the info dictionary exactly as it was
//! received) and writing the few shapes we build. The reader refuses anything ambiguous: leading
//! zeros, `-0`, duplicate keys, trailing bytes, and nesting deeper than [`MAX_DEPTH`]. Every length is
//! checked against the bytes that remain before it is used, so the tree never holds more elements
//! than the input has bytes.

use std::collections::BTreeSet;

/// Deepest nesting accepted. Real metainfo needs 5 (torrent > info > files > file > path).
pub(crate) const MAX_DEPTH: usize = 32;

/// A decoded bencode value, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Entries in input order, and the exact input bytes of the whole dictionary.
    Dict {
        entries: Vec<(&'a [u8], Value<'a>)>,
        raw: &'a [u8],
    },
}

impl<'a> Value<'a> {
    /// The value under `key` if this is a dictionary that has it.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict { entries, .. } => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn raw_dict(&self) -> Option<&'a [u8]> {
        match self {
            Value::Dict { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

/// Why a byte string is not valid bencode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("bencode ends early at byte {0}")]
    UnexpectedEnd(usize),
    #[error("unexpected byte {byte:#04x} at {at}")]
    UnexpectedByte { byte: u8, at: usize },
    #[error("malformed integer at byte {0}")]
    BadInteger(usize),
    #[error("malformed string length at byte {0}")]
    BadLength(usize),
    #[error("dictionary key is not a byte string at byte {0}")]
    KeyNotString(usize),
    #[error("duplicate dictionary key at byte {0}")]
    DuplicateKey(usize),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Decodes exactly one value that spans the whole input.
pub(crate) fn decode(input: &[u8]) -> Result<Value<'_>, BencodeError> {
    let mut reader = Reader { input, pos: 0 };
    let value = reader.value(0)?;
    if reader.pos != input.len() {
        return Err(BencodeError::TrailingBytes(input.len() - reader.pos));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => self.dict(depth),
            byte => Err(BencodeError::UnexpectedByte { byte, at: self.pos }),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        let start = self.pos;
        self.pos += 1;
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        let mut sorted = true;
        while self.peek()? != b'e' {
            let key_at = self.pos;
            if !self.peek()?.is_ascii_digit() {
                return Err(BencodeError::KeyNotString(key_at));
            }
            let key = self.bytes()?;
            if let Some((last, _)) = entries.last() {
                if *last == key {
                    return Err(BencodeError::DuplicateKey(key_at));
                }
                sorted &= *last < key;
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        // Unsorted keys exist in the wild and are accepted, but never twice the same key: two
        // readers could otherwise disagree about what a torrent says.
        if !sorted {
            let mut seen = BTreeSet::new();
            if !entries.iter().all(|(k, _)| seen.insert(*k)) {
                return Err(BencodeError::DuplicateKey(start));
            }
        }
        let raw = self
            .input
            .get(start..self.pos)
            .ok_or(BencodeError::UnexpectedEnd(self.pos))?;
        Ok(Value::Dict { entries, raw })
    }

    /// Reads the digits of an integer up to `end`, then consumes `end`.
    fn integer(&mut self, end: u8) -> Result<i64, BencodeError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(BencodeError::UnexpectedEnd(self.input.len()))?;
        let digits = &rest[..len];
        let (negative, magnitude) = match digits.split_first() {
            Some((b'-', m)) => (true, m),
            _ => (false, digits),
        };
        let leading_zero = magnitude.len() > 1 && magnitude.first() == Some(&b'0');
        let negative_zero = negative && magnitude == b"0";
        let digits_only = !magnitude.is_empty() && magnitude.iter().all(u8::is_ascii_digit);
        let canonical = digits_only && !leading_zero && !negative_zero;
        if !canonical {
            return Err(BencodeError::BadInteger(start));
        }
        let text = std::str::from_utf8(digits).map_err(|_| BencodeError::BadInteger(start))?;
        let n = text
            .parse::<i64>()
            .map_err(|_| BencodeError::BadInteger(start))?;
        self.pos = start + len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        let len = self
            .integer(b':')
            .map_err(|_| BencodeError::BadLength(at))?;
        let len = usize::try_from(len).map_err(|_| BencodeError::BadLength(at))?;
        // The length is checked against what is left before anything is sliced or allocated.
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or(BencodeError::UnexpectedEnd(self.input.len()))?;
        let out = &self.input[self.pos..end];
        self.pos = end;
        Ok(out)
    }
}

/// Appends a byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Appends an integer.
pub(crate) fn put_int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_nested_values_and_keeps_raw_dict_bytes() {
        let doc = b"d1:ai-12e1:bl3:xyzi0ee1:cd1:d0:ee";
        let v = decode(doc).unwrap();
        assert_eq!(v.get(b"a").and_then(Value::as_int), Some(-12));
        let list = v.get(b"b").and_then(Value::as_list).unwrap();
        assert_eq!(list, &[Value::Bytes(b"xyz"), Value::Int(0)]);
        assert_eq!(v.get(b"c").and_then(Value::raw_dict), Some(&b"d1:d0:e"[..]));
        assert_eq!(v.raw_dict(), Some(&doc[..]));
    }

    #[test]
    fn refuses_non_canonical_and_truncated_input() {
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"ie",
            b"i1",
            b"01:a",
            b"5:abc",
            b"l",
            b"d1:ai1e1:ai2ee",
            b"d1:bi1e1:ai2e1:bi3ee",
            b"di1ei2ee",
            b"i1ei2e",
            b"x",
            b"18446744073709551617:x",
        ] {
            assert!(
                decode(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn accepts_unsorted_unique_keys() {
        let v = decode(b"d1:bi1e1:ai2ee").unwrap();
        assert_eq!(v.get(b"a").and_then(Value::as_int), Some(2));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let mut doc = vec![b'l'; 10_000];
        doc.extend(std::iter::repeat_n(b'e', 10_000));
        assert_eq!(decode(&doc), Err(BencodeError::TooDeep));
    }

    /// Canonical encoding of a value (sorted keys), for the round-trip property.
    fn encode(v: &Value<'_>, out: &mut Vec<u8>) {
        match v {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => put_bytes(out, b),
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| encode(i, out));
                out.push(b'e');
            }
            Value::Dict { entries, .. } => {
                out.push(b'd');
                for (k, v) in entries {
                    put_bytes(out, k);
                    encode(v, out);
                }
                out.push(b'e');
            }
        }
    }

    /// Values as owned data, so that proptest can generate them.
    #[derive(Debug, Clone)]
    enum Owned {
        Int(i64),
        Bytes(Vec<u8>),
        List(Vec<Owned>),
        Dict(std::collections::BTreeMap<Vec<u8>, Owned>),
    }

    fn owned_strategy() -> impl proptest::strategy::Strategy<Value = Owned> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<i64>().prop_map(Owned::Int),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Owned::Bytes),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Owned::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..8),
                    inner,
                    0..6
                )
                .prop_map(Owned::Dict),
            ]
        })
    }

    fn encode_owned(v: &Owned, out: &mut Vec<u8>) {
        match v {
            Owned::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Owned::Bytes(b) => put_bytes(out, b),
            Owned::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| encode_owned(i, out));
                out.push(b'e');
            }
            Owned::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    put_bytes(out, k);
                    encode_owned(v, out);
                }
                out.push(b'e');
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_documents_decode_and_encode_back_to_the_same_bytes(v in owned_strategy()) {
            let mut doc = Vec::new();
            encode_owned(&v, &mut doc);
            let decoded = decode(&doc).unwrap();
            let mut again = Vec::new();
            encode(&decoded, &mut again);
            proptest::prop_assert_eq!(again, doc);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncated_documents_are_refused(v in owned_strategy(), cut in 1usize..64) {
            let mut doc = Vec::new();
            encode_owned(&v, &mut doc);
            let keep = doc.len().saturating_sub(cut);
            proptest::prop_assert!(decode(&doc[..keep]).is_err());
        }
    }

    #[test]
    fn writer_output_reads_back() {
        let mut out = Vec::new();
        out.push(b'd');
        put_bytes(&mut out, b"k");
        put_int(&mut out, 42);
        out.push(b'e');
        assert_eq!(out, b"d1:ki42ee");
        assert_eq!(
            decode(&out).unwrap().get(b"k").and_then(Value::as_int),
            Some(42)
        );
    }
}
