//! The bencode form of a record: body dictionary <-> [`RecordBody`], and the signed envelope around it.
//!
//! Envelope (keys sorted): `{"body": <body dict>, "pow": <nonce, int 0..=i64::MAX>, "sig": <64-byte signature>}`.
//! The signature covers [`SIGNATURE_DOMAIN`], the canonical body bytes and the nonce, so the nonce is the author's
//! and nobody can re-stamp a record into one with another id.
//!
//! Body keys (sorted, as bencode requires): `author` (32 bytes), `created` (int), `description`, `files` (list of
//! `{mime, path, size}`), `infohash` (20 bytes), `lang` (optional), `network`, `tags` (list), `thumbnail` (optional
//! `{bytes, mime}`), `title`, `v` (int, 1). Absent optional fields are omitted, never written empty.

use crate::bencode::{
    Dict, FieldError, Value, optional_dict, optional_str, reject_unknown_keys, required_bytes,
    required_dict, required_int, required_list, required_str,
};
use crate::ids::InfoHash;
use crate::keys::PublicKey;

use super::bounds::RECORD_VERSION;
use super::{FileEntry, RecordBody, RecordError, Thumbnail};

const BODY_KEYS: &[&str] = &[
    "author",
    "created",
    "description",
    "files",
    "infohash",
    "lang",
    "network",
    "tags",
    "thumbnail",
    "title",
    "v",
];
const FILE_KEYS: &[&str] = &["mime", "path", "size"];
const THUMBNAIL_KEYS: &[&str] = &["bytes", "mime"];
const ENVELOPE_KEYS: &[&str] = &["body", "pow", "sig"];

/// Prefix of every signed message, so a record signature can never be mistaken for a signature over anything
/// else the same key signs (BEP 44 items, wire handshakes).
pub const SIGNATURE_DOMAIN: &[u8] = b"kolokol/record/v1\0";

/// The message an author signs: the domain prefix, the canonical body bytes, then the proof-of-work nonce as 8 bytes
/// big-endian. The body is self-delimiting bencode and the nonce has a fixed width, so the message splits one way only.
pub(crate) fn signed_message(body_bytes: &[u8], nonce: u64) -> Vec<u8> {
    [SIGNATURE_DOMAIN, body_bytes, &nonce.to_be_bytes()].concat()
}

/// The canonical envelope `d4:body<body>3:powi<nonce>e3:sig64:<sig>e`. "body" < "pow" < "sig", so writing them in
/// this order is exactly what encoding the dictionary would produce (a test checks that).
pub(crate) fn envelope(body_bytes: &[u8], nonce: u64, sig: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_bytes.len() + 110);
    out.extend_from_slice(b"d4:body");
    out.extend_from_slice(body_bytes);
    out.extend_from_slice(b"3:pow");
    crate::bencode::encode_into(&int(nonce), &mut out);
    out.extend_from_slice(b"3:sig64:");
    out.extend_from_slice(sig);
    out.push(b'e');
    out
}

fn int(n: u64) -> Value {
    // Bounds checking guarantees n <= i64::MAX; saturate rather than wrap if a caller skipped it.
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The body dictionary. Callers check bounds first so the result is a valid record body.
pub(crate) fn body_to_value(body: &RecordBody) -> Value {
    let mut d = Dict::new();
    let mut put = |k: &str, v: Value| d.insert(k.as_bytes().to_vec(), v);
    put("v", Value::Int(RECORD_VERSION));
    put("network", body.network.as_str().into());
    put("author", body.author.as_bytes().as_slice().into());
    put("created", int(body.created));
    put("title", body.title.as_str().into());
    put("description", body.description.as_str().into());
    put(
        "tags",
        Value::List(body.tags.iter().map(|t| t.as_str().into()).collect()),
    );
    if let Some(lang) = &body.lang {
        put("lang", lang.as_str().into());
    }
    let files = body.files.iter().map(|f| {
        let mut fd = Dict::new();
        fd.insert(b"path".to_vec(), f.path.as_str().into());
        fd.insert(b"size".to_vec(), int(f.size));
        fd.insert(b"mime".to_vec(), f.mime.as_str().into());
        Value::Dict(fd)
    });
    put("files", Value::List(files.collect()));
    put("infohash", body.infohash.as_bytes().as_slice().into());
    if let Some(thumb) = &body.thumbnail {
        let mut td = Dict::new();
        td.insert(b"mime".to_vec(), thumb.mime.as_str().into());
        td.insert(b"bytes".to_vec(), thumb.bytes.as_slice().into());
        put("thumbnail", Value::Dict(td));
    }
    Value::Dict(d)
}

fn fixed<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], RecordError> {
    bytes.try_into().map_err(|_| RecordError::WrongLength {
        field,
        expected: N,
        actual: bytes.len(),
    })
}

fn non_negative(n: i64, field: impl FnOnce() -> String) -> Result<u64, RecordError> {
    u64::try_from(n).map_err(|_| RecordError::IntegerOutOfRange { field: field() })
}

/// Reads a list element as UTF-8 text, naming it `list[i]` in errors.
fn list_str(item: &Value, i: usize, list: &str) -> Result<String, FieldError> {
    let field = || format!("{list}[{i}]");
    match item {
        Value::Bytes(b) => {
            String::from_utf8(b.clone()).map_err(|_| FieldError::NotUtf8 { field: field() })
        }
        other => Err(FieldError::WrongType {
            field: field(),
            expected: "byte string",
            found: other.kind(),
        }),
    }
}

fn list_dict<'a>(item: &'a Value, i: usize, list: &str) -> Result<&'a Dict, FieldError> {
    item.as_dict().ok_or_else(|| FieldError::WrongType {
        field: format!("{list}[{i}]"),
        expected: "dictionary",
        found: item.kind(),
    })
}

/// The parts of a decoded envelope.
pub(crate) struct Envelope<'a> {
    pub(crate) body: &'a Dict,
    pub(crate) nonce: u64,
    pub(crate) signature: [u8; 64],
}

/// Splits the decoded envelope into the body dictionary, the proof-of-work nonce and the signature.
pub(crate) fn split_envelope(top: &Value) -> Result<Envelope<'_>, RecordError> {
    let top = top.as_dict().ok_or(RecordError::NotADictionary)?;
    reject_unknown_keys(top, ENVELOPE_KEYS)?;
    let body = required_dict(top, "body")?;
    // Integers beyond i64 are already refused by the decoder; this refuses the negative ones.
    let nonce = non_negative(required_int(top, "pow")?, || "proof-of-work nonce".into())?;
    let signature = fixed::<64>(required_bytes(top, "sig")?, "signature")?;
    Ok(Envelope {
        body,
        nonce,
        signature,
    })
}

/// Reads the exact body schema. Bounds are checked separately by `check_body`.
pub(crate) fn body_from_dict(d: &Dict) -> Result<RecordBody, RecordError> {
    // The version comes first, so a record from a newer format gets "unsupported version", not "unknown field".
    let version = required_int(d, "v")?;
    if version != RECORD_VERSION {
        return Err(RecordError::UnsupportedVersion(version));
    }
    reject_unknown_keys(d, BODY_KEYS)?;
    let tags = required_list(d, "tags")?;
    let tags = tags
        .iter()
        .enumerate()
        .map(|(i, t)| list_str(t, i, "tags"))
        .collect::<Result<_, _>>()?;
    let files_list = required_list(d, "files")?;
    let mut files = Vec::with_capacity(files_list.len());
    for (i, item) in files_list.iter().enumerate() {
        let f = list_dict(item, i, "files")?;
        reject_unknown_keys(f, FILE_KEYS)?;
        files.push(FileEntry {
            path: required_str(f, "path")?.to_owned(),
            size: non_negative(required_int(f, "size")?, || {
                format!("size of file #{}", i + 1)
            })?,
            mime: required_str(f, "mime")?.to_owned(),
        });
    }
    let thumbnail = match optional_dict(d, "thumbnail")? {
        Some(t) => {
            reject_unknown_keys(t, THUMBNAIL_KEYS)?;
            Some(Thumbnail {
                mime: required_str(t, "mime")?.to_owned(),
                bytes: required_bytes(t, "bytes")?.to_vec(),
            })
        }
        None => None,
    };
    Ok(RecordBody {
        network: required_str(d, "network")?.to_owned(),
        author: PublicKey::from_bytes(fixed(required_bytes(d, "author")?, "author key")?),
        created: non_negative(required_int(d, "created")?, || "creation time".into())?,
        title: required_str(d, "title")?.to_owned(),
        description: required_str(d, "description")?.to_owned(),
        tags,
        lang: optional_str(d, "lang")?.map(str::to_owned),
        files,
        infohash: InfoHash(fixed(required_bytes(d, "infohash")?, "infohash")?),
        thumbnail,
    })
}
