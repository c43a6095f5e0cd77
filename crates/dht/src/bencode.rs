//! A lenient but strictly bounded bencode reader, and a canonical writer.
//!
//! KRPC from other clients is not always canonical (unsorted or duplicate dictionary keys, integers with
//! leading zeros), so the reader accepts those; what it never accepts is unbounded work: the input, the
//! nesting depth and the number of values are capped before anything is allocated. Every value keeps the
//! raw bytes it was read from, because a BEP 44 signature covers `v` exactly as it was encoded.

use std::collections::BTreeMap;

/// Largest packet read at all (a KRPC message fits one UDP datagram; BEP 44 values are at most 1000 bytes).
pub const MAX_INPUT: usize = 2048;
/// Deepest nesting of lists and dictionaries.
pub const MAX_DEPTH: usize = 8;
/// Most values (of any kind, at any depth) in one input.
pub const MAX_VALUES: usize = 512;

/// Why bytes are not bencode we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input longer than {MAX_INPUT} bytes")]
    TooLong,
    #[error("nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_VALUES} values")]
    TooManyValues,
    #[error("unexpected end of input")]
    Eof,
    #[error("invalid bencode at byte {0}")]
    Invalid(usize),
    #[error("bytes after the end of the value")]
    Trailing,
}

/// A decoded value, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in the order read; see [`Value::get`] for duplicates.
    Dict(Vec<(&'a [u8], Value<'a>, &'a [u8])>),
}

impl<'a> Value<'a> {
    /// The value of `key` in a dictionary (the first one if a peer repeated the key).
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.get_raw(key).map(|(v, _)| v)
    }

    /// Like [`Value::get`], with the raw bytes the value was read from.
    pub fn get_raw(&self, key: &[u8]) -> Option<(&Value<'a>, &'a [u8])> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, v, raw)| (v, *raw)),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

/// Reads exactly one value filling `input`.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    if input.len() > MAX_INPUT {
        return Err(DecodeError::TooLong);
    }
    let mut reader = Reader {
        input,
        pos: 0,
        values: 0,
    };
    let value = reader.value(0)?;
    if reader.pos != input.len() {
        return Err(DecodeError::Trailing);
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    values: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input.get(self.pos).copied().ok_or(DecodeError::Eof)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(DecodeError::TooManyValues);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                self.pos += 1;
                let mut entries = Vec::new();
                while self.peek()? != b'e' {
                    let key = self.bytes()?;
                    let start = self.pos;
                    let value = self.value(depth + 1)?;
                    let raw = self.input.get(start..self.pos).ok_or(DecodeError::Eof)?;
                    entries.push((key, value, raw));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            _ => Err(DecodeError::Invalid(self.pos)),
        }
    }

    /// An integer up to `end`; leading zeros and `-0` are tolerated, overflow is not.
    fn integer(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let mut negative = false;
        if self.peek()? == b'-' {
            negative = true;
            self.pos += 1;
        }
        let mut n: i64 = 0;
        let mut digits = 0;
        loop {
            let c = self.peek()?;
            if c == end {
                break;
            }
            if !c.is_ascii_digit() || digits >= 19 {
                return Err(DecodeError::Invalid(self.pos));
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(c - b'0')))
                .ok_or(DecodeError::Invalid(start))?;
            digits += 1;
            self.pos += 1;
        }
        if digits == 0 {
            return Err(DecodeError::Invalid(start));
        }
        self.pos += 1;
        Ok(if negative { -n } else { n })
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        if !self.peek()?.is_ascii_digit() {
            return Err(DecodeError::Invalid(self.pos));
        }
        let len = self.integer(b':')?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Invalid(self.pos))?;
        let end = self.pos.checked_add(len).ok_or(DecodeError::Eof)?;
        let bytes = self.input.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(bytes)
    }
}

/// A value to write; dictionaries are written with sorted keys (canonical bencode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bencode {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>),
    /// Bytes that are already bencoded (a BEP 44 `v` as it was signed).
    Raw(Vec<u8>),
}

impl Bencode {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Bencode::Bytes(b) => write_bytes(out, b),
            Bencode::List(items) => {
                out.push(b'l');
                for item in items {
                    item.write(out);
                }
                out.push(b'e');
            }
            Bencode::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    write_bytes(out, k);
                    v.write(out);
                }
                out.push(b'e');
            }
            Bencode::Raw(raw) => out.extend_from_slice(raw),
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// A dictionary being built: `dict().bytes("a", ..).int("b", ..).build()`.
#[derive(Debug, Default)]
pub struct DictBuilder(BTreeMap<Vec<u8>, Bencode>);

impl DictBuilder {
    pub fn new() -> Self {
        DictBuilder::default()
    }

    pub fn put(mut self, key: &str, value: Bencode) -> Self {
        self.0.insert(key.as_bytes().to_vec(), value);
        self
    }

    pub fn bytes(self, key: &str, value: &[u8]) -> Self {
        self.put(key, Bencode::Bytes(value.to_vec()))
    }

    pub fn int(self, key: &str, value: i64) -> Self {
        self.put(key, Bencode::Int(value))
    }

    pub fn build(self) -> Bencode {
        Bencode::Dict(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_non_canonical_krpc() {
        // Unsorted keys, a duplicate key (the first wins), an integer with a leading zero.
        let v = decode(b"d1:y1:q1:ai007e1:y1:r1:t2:ab1:qi0ee").unwrap();
        assert_eq!(v.get(b"y").and_then(Value::as_bytes), Some(&b"q"[..]));
        assert_eq!(v.get(b"a").and_then(Value::as_int), Some(7));
        assert_eq!(v.get(b"t").and_then(Value::as_bytes), Some(&b"ab"[..]));
    }

    #[test]
    fn keeps_raw_bytes_of_values() {
        let v = decode(b"d1:vd1:ai1eee").unwrap();
        let (_, raw) = v.get_raw(b"v").unwrap();
        assert_eq!(raw, b"d1:ai1ee");
    }

    #[test]
    fn refuses_what_is_unbounded_or_broken() {
        assert_eq!(decode(&[b'l'; 4000]), Err(DecodeError::TooLong));
        let deep = [vec![b'l'; 20], vec![b'e'; 20]].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        let many = [b"l".to_vec(), b"i1e".repeat(600), b"e".to_vec()].concat();
        assert_eq!(decode(&many), Err(DecodeError::TooManyValues));
        assert_eq!(decode(b"5:ab"), Err(DecodeError::Eof));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::Trailing));
        assert!(decode(b"i99999999999999999999e").is_err());
        assert!(decode(b"ie").is_err());
        assert!(decode(b"i-e").is_err());
        assert!(decode(b"d1:a").is_err());
        assert!(decode(b"di1ei2ee").is_err(), "keys must be byte strings");
        assert!(decode(b"").is_err());
        assert!(decode(b"18446744073709551617:x").is_err());
    }

    fn arb_bencode() -> impl Strategy<Value = Bencode> {
        let leaf = prop_oneof![
            (i64::MIN + 1..=i64::MAX).prop_map(Bencode::Int),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bencode::Bytes),
        ];
        leaf.prop_recursive(3, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Bencode::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..6),
                    inner,
                    0..5
                )
                .prop_map(Bencode::Dict),
            ]
        })
    }

    fn to_owned(v: &Value<'_>) -> Bencode {
        match v {
            Value::Int(i) => Bencode::Int(*i),
            Value::Bytes(b) => Bencode::Bytes(b.to_vec()),
            Value::List(l) => Bencode::List(l.iter().map(to_owned).collect()),
            Value::Dict(d) => Bencode::Dict(
                d.iter()
                    .map(|(k, v, _)| (k.to_vec(), to_owned(v)))
                    .collect(),
            ),
        }
    }

    proptest! {
        #[test]
        fn canonical_values_round_trip(value in arb_bencode()) {
            let bytes = value.encode();
            let decoded = decode(&bytes).unwrap();
            prop_assert_eq!(to_owned(&decoded), value);
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
