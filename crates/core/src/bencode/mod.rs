//! Strict canonical bencode (BEP 3), the one encoding kolokol signs and sends.
//!
//! "Canonical" means every value has exactly one encoding: integers without leading zeros or `-0`, byte strings
//! with a minimal decimal length, dictionary keys sorted by raw bytes with no duplicates. [`decode`] refuses
//! anything else, so `decode(x) == Ok(v)` implies `encode(&v) == x`, and a signature over the bytes is a
//! signature over the value.
//!
//! Decoding works on untrusted bytes: the input size, the nesting depth and the total number of values are capped
//! by [`DecodeLimits`], and a byte-string length is compared with the remaining input before anything is
//! allocated for it.

mod fields;
#[cfg(test)]
mod tests;

pub use fields::{
    FieldError, optional_bytes, optional_dict, optional_int, optional_list, optional_str,
    reject_unknown_keys, required_bytes, required_dict, required_int, required_list, required_str,
};

use std::collections::BTreeMap;

/// A bencode dictionary: keys are raw byte strings, kept sorted (which is also the canonical order).
pub type Dict = BTreeMap<Vec<u8>, Value>;

/// One bencode value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `i<decimal>e`.
    Int(i64),
    /// `<length>:<bytes>`.
    Bytes(Vec<u8>),
    /// `l<values>e`.
    List(Vec<Value>),
    /// `d<key><value>...e`, keys sorted.
    Dict(Dict),
}

impl Value {
    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The bytes, if this is a `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The items, if this is a `List`.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The dictionary, if this is a `Dict`.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "byte string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Bytes(s.into_bytes())
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(items)
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Self {
        Value::Dict(d)
    }
}

/// Caps applied while decoding untrusted input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting allowed; a bare integer or string has depth 1, a list of them depth 2.
    /// Values above [`MAX_DEPTH_CEILING`] are treated as that ceiling, because the decoder recurses once per level.
    pub max_depth: usize,
    /// Most values allowed in total, counting every integer, string, list, dictionary and dictionary key.
    pub max_items: usize,
    /// Longest input accepted; checked before anything is parsed.
    pub max_input_bytes: usize,
}

/// Hard upper bound on nesting, whatever [`DecodeLimits::max_depth`] says: it keeps recursion far from the stack limit.
pub const MAX_DEPTH_CEILING: usize = 256;

impl Default for DecodeLimits {
    /// Generous enough for any kolokol message, small enough to be harmless: depth 32, 100 000 values, 1 MiB.
    fn default() -> Self {
        DecodeLimits {
            max_depth: 32,
            max_items: 100_000,
            max_input_bytes: 1024 * 1024,
        }
    }
}

/// Why some bytes are not one canonical bencode value. Positions are byte offsets into the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("input is {len} bytes, more than the {max}-byte limit")]
    InputTooLarge { len: usize, max: usize },
    #[error("input ends early at byte {at}")]
    UnexpectedEnd { at: usize },
    #[error("unexpected byte 0x{byte:02x} at byte {at}")]
    UnexpectedByte { byte: u8, at: usize },
    #[error("extra bytes after the value, starting at byte {at}")]
    TrailingBytes { at: usize },
    #[error("integer at byte {at} is not canonical (empty, leading zero or -0)")]
    NonCanonicalInteger { at: usize },
    #[error("integer at byte {at} does not fit in 64 bits")]
    IntegerOverflow { at: usize },
    #[error("string length at byte {at} is not canonical (leading zero) or too large")]
    InvalidLength { at: usize },
    #[error("string at byte {at} claims {len} bytes but only {remaining} remain")]
    LengthExceedsInput {
        at: usize,
        len: usize,
        remaining: usize,
    },
    #[error("dictionary key at byte {at} is not a byte string")]
    KeyNotBytes { at: usize },
    #[error("dictionary key at byte {at} is out of order")]
    UnsortedKeys { at: usize },
    #[error("dictionary key at byte {at} is repeated")]
    DuplicateKey { at: usize },
    #[error("nesting deeper than {max} levels at byte {at}")]
    DepthExceeded { max: usize, at: usize },
    #[error("more than {max} values")]
    TooManyItems { max: usize },
}

/// Encodes a value canonically. Never fails: every [`Value`] has exactly one encoding.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode_into(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(d) => {
            out.push(b'd');
            // BTreeMap iterates in ascending byte order: exactly the canonical key order.
            for (k, v) in d {
                encode_bytes(k, out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decodes exactly one canonical value that spans the whole input.
pub fn decode(input: &[u8], limits: &DecodeLimits) -> Result<Value, BencodeError> {
    if input.len() > limits.max_input_bytes {
        return Err(BencodeError::InputTooLarge {
            len: input.len(),
            max: limits.max_input_bytes,
        });
    }
    let mut decoder = Decoder {
        input,
        pos: 0,
        items: 0,
        max_items: limits.max_items,
        max_depth: limits.max_depth.min(MAX_DEPTH_CEILING),
    };
    let value = decoder.value(1)?;
    if decoder.pos != input.len() {
        return Err(BencodeError::TrailingBytes { at: decoder.pos });
    }
    Ok(value)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    max_items: usize,
    max_depth: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd { at: self.pos })
    }

    fn count_item(&mut self) -> Result<(), BencodeError> {
        self.items += 1;
        if self.items > self.max_items {
            return Err(BencodeError::TooManyItems {
                max: self.max_items,
            });
        }
        Ok(())
    }

    /// Decodes one value whose nesting level is `depth` (the outermost value is at depth 1).
    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        let at = self.pos;
        if depth > self.max_depth {
            return Err(BencodeError::DepthExceeded {
                max: self.max_depth,
                at,
            });
        }
        self.count_item()?;
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
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
            b'd' => {
                self.pos += 1;
                let mut dict = Dict::new();
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::KeyNotBytes { at: key_at });
                    }
                    self.count_item()?;
                    let key = self.bytes()?;
                    // Keys must arrive strictly ascending; comparing with the last key catches both disorder and
                    // repetition without a second pass.
                    if let Some((last, _)) = dict.last_key_value() {
                        match key.as_slice().cmp(last.as_slice()) {
                            std::cmp::Ordering::Less => {
                                return Err(BencodeError::UnsortedKeys { at: key_at });
                            }
                            std::cmp::Ordering::Equal => {
                                return Err(BencodeError::DuplicateKey { at: key_at });
                            }
                            std::cmp::Ordering::Greater => {}
                        }
                    }
                    let value = self.value(depth + 1)?;
                    dict.insert(key, value);
                }
                self.pos += 1;
                Ok(Value::Dict(dict))
            }
            byte => Err(BencodeError::UnexpectedByte { byte, at }),
        }
    }

    /// `i<digits>e` at the current position.
    fn int(&mut self) -> Result<i64, BencodeError> {
        let at = self.pos;
        self.pos += 1; // 'i'
        let rest = &self.input[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'e')
            .ok_or(BencodeError::UnexpectedEnd {
                at: self.input.len(),
            })?;
        let text = &rest[..len];
        let (negative, digits) = match text.split_first() {
            Some((b'-', digits)) => (true, digits),
            _ => (false, text),
        };
        if let Some(i) = digits.iter().position(|b| !b.is_ascii_digit()) {
            let offset = self.pos + usize::from(negative) + i;
            return Err(BencodeError::UnexpectedByte {
                byte: digits[i],
                at: offset,
            });
        }
        let canonical = match digits {
            [] => false,
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => true,
        };
        if !canonical {
            return Err(BencodeError::NonCanonicalInteger { at });
        }
        // Accumulate towards the sign so that i64::MIN, whose magnitude has no positive i64, still parses.
        let mut n: i64 = 0;
        for &d in digits {
            let d = i64::from(d - b'0');
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(d)
                    } else {
                        n.checked_add(d)
                    }
                })
                .ok_or(BencodeError::IntegerOverflow { at })?;
        }
        self.pos += len + 1;
        Ok(n)
    }

    /// `<length>:<bytes>` at the current position.
    fn bytes(&mut self) -> Result<Vec<u8>, BencodeError> {
        let at = self.pos;
        let rest = &self.input[self.pos..];
        let colon = match rest.iter().position(|b| !b.is_ascii_digit()) {
            Some(i) if rest[i] == b':' => i,
            Some(i) => {
                return Err(BencodeError::UnexpectedByte {
                    byte: rest[i],
                    at: self.pos + i,
                });
            }
            None => {
                return Err(BencodeError::UnexpectedEnd {
                    at: self.input.len(),
                });
            }
        };
        let digits = &rest[..colon];
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(BencodeError::InvalidLength { at });
        }
        let mut len: usize = 0;
        for &d in digits {
            len = len
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
                .ok_or(BencodeError::InvalidLength { at })?;
        }
        let start = self.pos + colon + 1;
        let remaining = self.input.len() - start;
        if len > remaining {
            return Err(BencodeError::LengthExceedsInput { at, len, remaining });
        }
        self.pos = start + len;
        Ok(self.input[start..start + len].to_vec())
    }
}
