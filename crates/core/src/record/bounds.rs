//! The limits every record must respect, and the one function that checks a body against them.
//!
//! [`super::sign_record`] and [`super::validate_record`] both call [`check_body`], so a node cannot produce a
//! record that another node would refuse. Lengths are in bytes of UTF-8 unless stated.

use std::collections::BTreeSet;

use super::{FileEntry, RecordBody, RecordError, Thumbnail};

/// The only record format version this code reads and writes.
pub const RECORD_VERSION: i64 = 1;
/// Largest signed record, checked before any decoding.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Longest network name (at least 1; `[a-z0-9-]`).
pub const MAX_NETWORK_BYTES: usize = 64;
/// Longest title (at least 1, not blank).
pub const MAX_TITLE_BYTES: usize = 512;
/// Longest description (may be empty).
pub const MAX_DESCRIPTION_BYTES: usize = 8192;
/// Most tags per record.
pub const MAX_TAGS: usize = 16;
/// Longest tag (at least 1, not blank).
pub const MAX_TAG_BYTES: usize = 64;
/// Longest language tag when present (at least 1; `[A-Za-z0-9-]`).
pub const MAX_LANG_BYTES: usize = 16;
/// Most files per record (at least 1).
pub const MAX_FILES: usize = 1000;
/// Longest file path (at least 1).
pub const MAX_FILE_PATH_BYTES: usize = 1024;
/// Longest MIME type (at least 1; `type/subtype`).
pub const MAX_MIME_BYTES: usize = 128;
/// Largest thumbnail image.
pub const MAX_THUMBNAIL_BYTES: usize = 32 * 1024;
/// How far in the future (seconds) a record's creation time may be, to allow for clock skew between machines.
pub const MAX_CLOCK_SKEW_SECS: u64 = 3600;

/// Checks every bound on a record body. The first violation found is returned.
pub fn check_body(body: &RecordBody) -> Result<(), RecordError> {
    check_network(&body.network)?;
    if body.created > i64::MAX as u64 {
        return Err(RecordError::CreatedTooLarge(body.created));
    }
    check_title(&body.title)?;
    if body.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(RecordError::DescriptionTooLong);
    }
    if body
        .description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(RecordError::ControlCharacter {
            field: "description".into(),
        });
    }
    check_tags(&body.tags)?;
    if let Some(lang) = &body.lang {
        check_lang(lang)?;
    }
    check_files(&body.files)?;
    if let Some(thumbnail) = &body.thumbnail {
        check_thumbnail(thumbnail)?;
    }
    Ok(())
}

/// Checks a network name on its own (nodes also use this for their configured name).
pub fn check_network(network: &str) -> Result<(), RecordError> {
    if network.is_empty() {
        return Err(RecordError::NetworkEmpty);
    }
    if network.len() > MAX_NETWORK_BYTES {
        return Err(RecordError::NetworkTooLong);
    }
    if !network
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(RecordError::NetworkInvalid(network.to_owned()));
    }
    Ok(())
}

fn no_control(text: &str, field: impl FnOnce() -> String) -> Result<(), RecordError> {
    if text.chars().any(char::is_control) {
        return Err(RecordError::ControlCharacter { field: field() });
    }
    Ok(())
}

fn check_title(title: &str) -> Result<(), RecordError> {
    if title.is_empty() {
        return Err(RecordError::TitleEmpty);
    }
    if title.len() > MAX_TITLE_BYTES {
        return Err(RecordError::TitleTooLong);
    }
    no_control(title, || "title".into())?;
    if title.trim().is_empty() {
        return Err(RecordError::TitleBlank);
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<(), RecordError> {
    if tags.len() > MAX_TAGS {
        return Err(RecordError::TooManyTags { count: tags.len() });
    }
    for (index, tag) in tags.iter().enumerate() {
        if tag.len() > MAX_TAG_BYTES {
            return Err(RecordError::TagTooLong { index });
        }
        no_control(tag, || format!("tag #{}", index + 1))?;
        if tag.trim().is_empty() {
            return Err(RecordError::TagEmpty { index });
        }
    }
    Ok(())
}

fn check_lang(lang: &str) -> Result<(), RecordError> {
    if lang.is_empty() {
        return Err(RecordError::LangEmpty);
    }
    if lang.len() > MAX_LANG_BYTES {
        return Err(RecordError::LangTooLong);
    }
    if !lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(RecordError::LangInvalid(lang.to_owned()));
    }
    Ok(())
}

fn check_files(files: &[FileEntry]) -> Result<(), RecordError> {
    if files.is_empty() {
        return Err(RecordError::NoFiles);
    }
    if files.len() > MAX_FILES {
        return Err(RecordError::TooManyFiles { count: files.len() });
    }
    let mut paths = BTreeSet::new();
    for (index, file) in files.iter().enumerate() {
        check_path(index, &file.path)?;
        if file.size > i64::MAX as u64 {
            return Err(RecordError::FileTooLarge {
                path: file.path.clone(),
                size: file.size,
            });
        }
        check_mime(&file.mime, || format!("file {:?}", file.path))?;
        if !paths.insert(file.path.as_str()) {
            return Err(RecordError::DuplicateFilePath(file.path.clone()));
        }
    }
    // A torrent cannot hold both a file "a" and a file "a/b": "a" would have to be a file and a folder at once.
    for path in &paths {
        for (i, _) in path.match_indices('/') {
            if let Some(folder) = paths.get(&path[..i]) {
                return Err(RecordError::FilePathConflict {
                    file: (*folder).to_owned(),
                    other: (*path).to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Characters that reorder how text is displayed; in a file name they can make "exe" look like "mp4".
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check_path(index: usize, path: &str) -> Result<(), RecordError> {
    if path.is_empty() {
        return Err(RecordError::FilePathEmpty { index });
    }
    if path.len() > MAX_FILE_PATH_BYTES {
        return Err(RecordError::FilePathTooLong { index });
    }
    if path.contains('\0') {
        return Err(RecordError::FilePathNul(path.to_owned()));
    }
    no_control(path, || format!("path of file #{}", index + 1))?;
    if path.starts_with('/') {
        return Err(RecordError::FilePathAbsolute(path.to_owned()));
    }
    if path.contains('\\') {
        return Err(RecordError::FilePathBackslash(path.to_owned()));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(RecordError::FilePathBadComponent(path.to_owned()));
    }
    if path.chars().any(is_bidi_control) {
        return Err(RecordError::FilePathBidiControl(path.to_owned()));
    }
    Ok(())
}

/// `type/subtype`, each side made of the characters RFC 6838 allows in a registered name.
fn check_mime(mime: &str, field: impl Fn() -> String) -> Result<(), RecordError> {
    if mime.is_empty() {
        return Err(RecordError::MimeEmpty { field: field() });
    }
    if mime.len() > MAX_MIME_BYTES {
        return Err(RecordError::MimeTooLong { field: field() });
    }
    let name_ok = |s: &str| {
        s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match mime.split_once('/') {
        Some((kind, subtype)) if name_ok(kind) && name_ok(subtype) => Ok(()),
        _ => Err(RecordError::MimeMalformed {
            field: field(),
            mime: mime.to_owned(),
        }),
    }
}

fn check_thumbnail(thumbnail: &Thumbnail) -> Result<(), RecordError> {
    check_mime(&thumbnail.mime, || "thumbnail".into())?;
    let is_image = thumbnail
        .mime
        .split_once('/')
        .is_some_and(|(kind, _)| kind.eq_ignore_ascii_case("image"));
    if !is_image {
        return Err(RecordError::ThumbnailNotImage(thumbnail.mime.clone()));
    }
    if thumbnail.bytes.len() > MAX_THUMBNAIL_BYTES {
        return Err(RecordError::ThumbnailTooLarge {
            len: thumbnail.bytes.len(),
        });
    }
    Ok(())
}
