//! Typed reads of named fields out of a decoded dictionary, with errors that name the field.
//!
//! Schemas built on bencode (records, wire messages) use these so that every "missing", "wrong type" and
//! "unknown key" failure reads the same way.

use super::{Dict, Value};

/// Why a dictionary does not match the expected shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("field \"{field}\" is missing")]
    Missing { field: String },
    #[error("field \"{field}\" has the wrong type: expected {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("field \"{field}\" is not valid UTF-8")]
    NotUtf8 { field: String },
    #[error("unknown field \"{field}\"")]
    UnknownKey { field: String },
}

fn wrong_type(field: &str, expected: &'static str, found: &Value) -> FieldError {
    FieldError::WrongType {
        field: field.to_owned(),
        expected,
        found: found.kind(),
    }
}

fn required<'a>(dict: &'a Dict, field: &str) -> Result<&'a Value, FieldError> {
    dict.get(field.as_bytes())
        .ok_or_else(|| FieldError::Missing {
            field: field.to_owned(),
        })
}

/// Refuses any key not in `allowed`; the error names the first unknown key (lossily decoded for display).
pub fn reject_unknown_keys(dict: &Dict, allowed: &[&str]) -> Result<(), FieldError> {
    match dict
        .keys()
        .find(|k| !allowed.iter().any(|a| a.as_bytes() == k.as_slice()))
    {
        Some(k) => Err(FieldError::UnknownKey {
            field: String::from_utf8_lossy(k).into_owned(),
        }),
        None => Ok(()),
    }
}

/// A byte-string field that must be present.
pub fn required_bytes<'a>(dict: &'a Dict, field: &str) -> Result<&'a [u8], FieldError> {
    let value = required(dict, field)?;
    value
        .as_bytes()
        .ok_or_else(|| wrong_type(field, "byte string", value))
}

/// A byte-string field that may be absent.
pub fn optional_bytes<'a>(dict: &'a Dict, field: &str) -> Result<Option<&'a [u8]>, FieldError> {
    if dict.contains_key(field.as_bytes()) {
        required_bytes(dict, field).map(Some)
    } else {
        Ok(None)
    }
}

/// A UTF-8 text field that must be present.
pub fn required_str<'a>(dict: &'a Dict, field: &str) -> Result<&'a str, FieldError> {
    let bytes = required_bytes(dict, field)?;
    std::str::from_utf8(bytes).map_err(|_| FieldError::NotUtf8 {
        field: field.to_owned(),
    })
}

/// A UTF-8 text field that may be absent.
pub fn optional_str<'a>(dict: &'a Dict, field: &str) -> Result<Option<&'a str>, FieldError> {
    if dict.contains_key(field.as_bytes()) {
        required_str(dict, field).map(Some)
    } else {
        Ok(None)
    }
}

/// An integer field that must be present.
pub fn required_int(dict: &Dict, field: &str) -> Result<i64, FieldError> {
    let value = required(dict, field)?;
    value
        .as_int()
        .ok_or_else(|| wrong_type(field, "integer", value))
}

/// An integer field that may be absent.
pub fn optional_int(dict: &Dict, field: &str) -> Result<Option<i64>, FieldError> {
    if dict.contains_key(field.as_bytes()) {
        required_int(dict, field).map(Some)
    } else {
        Ok(None)
    }
}

/// A list field that must be present.
pub fn required_list<'a>(dict: &'a Dict, field: &str) -> Result<&'a [Value], FieldError> {
    let value = required(dict, field)?;
    value
        .as_list()
        .ok_or_else(|| wrong_type(field, "list", value))
}

/// A list field that may be absent.
pub fn optional_list<'a>(dict: &'a Dict, field: &str) -> Result<Option<&'a [Value]>, FieldError> {
    if dict.contains_key(field.as_bytes()) {
        required_list(dict, field).map(Some)
    } else {
        Ok(None)
    }
}

/// A dictionary field that must be present.
pub fn required_dict<'a>(dict: &'a Dict, field: &str) -> Result<&'a Dict, FieldError> {
    let value = required(dict, field)?;
    value
        .as_dict()
        .ok_or_else(|| wrong_type(field, "dictionary", value))
}

/// A dictionary field that may be absent.
pub fn optional_dict<'a>(dict: &'a Dict, field: &str) -> Result<Option<&'a Dict>, FieldError> {
    if dict.contains_key(field.as_bytes()) {
        required_dict(dict, field).map(Some)
    } else {
        Ok(None)
    }
}
