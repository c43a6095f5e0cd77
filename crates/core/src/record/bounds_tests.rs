//! Every bound at its limit (accepted) and one past it (refused by both `sign_record` and `validate_record`).

use super::codec::body_to_value;
use super::tests::*;
use super::*;
use crate::bencode::encode;

#[test]
fn network_bounds() {
    assert_accepted(with(|b| b.network = "a".repeat(MAX_NETWORK_BYTES)));
    let long = ValidationContext {
        network: "a".repeat(65),
        ..ctx()
    };
    assert_eq!(
        sign_record(with(|b| b.network = "a".repeat(65)), &key()).map(|_| ()),
        Err(RecordError::NetworkTooLong)
    );
    assert_eq!(
        validate_record(&sign_raw(&with(|b| b.network = "a".repeat(65))), &long),
        Err(RecordError::NetworkTooLong)
    );
    assert_refused(
        with(|b| b.network = String::new()),
        RecordError::NetworkEmpty,
    );
    assert_refused(
        with(|b| b.network = "Kolokol".into()),
        RecordError::NetworkInvalid("Kolokol".into()),
    );
    assert_refused(
        with(|b| b.network = "kolo kol".into()),
        RecordError::NetworkInvalid("kolo kol".into()),
    );
}

#[test]
fn title_bounds() {
    // 256 two-byte Cyrillic letters: 512 bytes exactly.
    assert_accepted(with(|b| b.title = "ж".repeat(256)));
    assert_refused(
        with(|b| b.title = format!("{}x", "ж".repeat(256))),
        RecordError::TitleTooLong,
    );
    assert_refused(with(|b| b.title = String::new()), RecordError::TitleEmpty);
    assert_refused(
        with(|b| b.title = " \u{3000} ".into()),
        RecordError::TitleBlank,
    );
    assert_refused(
        with(|b| b.title = "bell\u{7}".into()),
        RecordError::ControlCharacter {
            field: "title".into(),
        },
    );
}

#[test]
fn description_bounds() {
    assert_accepted(with(|b| b.description = "d".repeat(MAX_DESCRIPTION_BYTES)));
    assert_accepted(with(|b| b.description = String::new()));
    assert_refused(
        with(|b| b.description = "d".repeat(MAX_DESCRIPTION_BYTES + 1)),
        RecordError::DescriptionTooLong,
    );
    assert_refused(
        with(|b| b.description = "line\r\n".into()),
        RecordError::ControlCharacter {
            field: "description".into(),
        },
    );
}

#[test]
fn tag_bounds() {
    assert_accepted(with(|b| b.tags = vec!["t".repeat(MAX_TAG_BYTES); MAX_TAGS]));
    assert_accepted(with(|b| b.tags = Vec::new()));
    assert_refused(
        with(|b| b.tags = vec!["t".into(); MAX_TAGS + 1]),
        RecordError::TooManyTags { count: 17 },
    );
    assert_refused(
        with(|b| b.tags = vec!["ok".into(), "t".repeat(MAX_TAG_BYTES + 1)]),
        RecordError::TagTooLong { index: 1 },
    );
    assert_refused(
        with(|b| b.tags = vec![String::new()]),
        RecordError::TagEmpty { index: 0 },
    );
    assert_refused(
        with(|b| b.tags = vec!["  ".into()]),
        RecordError::TagEmpty { index: 0 },
    );
    assert_refused(
        with(|b| b.tags = vec!["a\u{0}".into()]),
        RecordError::ControlCharacter {
            field: "tag #1".into(),
        },
    );
}

#[test]
fn lang_bounds() {
    assert_accepted(with(|b| b.lang = Some("pt-BR".into())));
    assert_accepted(with(|b| b.lang = Some("x".repeat(MAX_LANG_BYTES))));
    assert_refused(
        with(|b| b.lang = Some("x".repeat(MAX_LANG_BYTES + 1))),
        RecordError::LangTooLong,
    );
    assert_refused(
        with(|b| b.lang = Some(String::new())),
        RecordError::LangEmpty,
    );
    assert_refused(
        with(|b| b.lang = Some("pt_BR".into())),
        RecordError::LangInvalid("pt_BR".into()),
    );
}

#[test]
fn file_count_bounds() {
    let many = |n: usize| (0..n).map(|i| file(&format!("f{i}"))).collect::<Vec<_>>();
    assert_accepted(with(|b| b.files = many(MAX_FILES)));
    assert_refused(
        with(|b| b.files = many(MAX_FILES + 1)),
        RecordError::TooManyFiles { count: 1001 },
    );
    assert_refused(with(|b| b.files = Vec::new()), RecordError::NoFiles);
}

#[test]
fn file_path_bounds() {
    let one = |path: &str| with(|b| b.files = vec![file(path)]);
    assert_accepted(one(&"p".repeat(MAX_FILE_PATH_BYTES)));
    assert_accepted(one("папка/подпапка/файл.txt"));
    assert_refused(
        one(&"p".repeat(MAX_FILE_PATH_BYTES + 1)),
        RecordError::FilePathTooLong { index: 0 },
    );
    assert_refused(one(""), RecordError::FilePathEmpty { index: 0 });
    assert_refused(
        one("/etc/passwd"),
        RecordError::FilePathAbsolute("/etc/passwd".into()),
    );
    assert_refused(one("a\\b"), RecordError::FilePathBackslash("a\\b".into()));
    assert_refused(one("a\0b"), RecordError::FilePathNul("a\0b".into()));
    assert_refused(
        one("a\nb"),
        RecordError::ControlCharacter {
            field: "path of file #1".into(),
        },
    );
    for bad in ["a//b", "./a", "a/./b", "a/..", "../a", "a/", ".."] {
        assert_refused(one(bad), RecordError::FilePathBadComponent(bad.into()));
    }
    assert_accepted(one("...")); // Three dots is an ordinary (if odd) name.
    let disguised = "photo\u{202E}4pm.exe";
    assert_refused(
        one(disguised),
        RecordError::FilePathBidiControl(disguised.into()),
    );
    assert_refused(
        with(|b| b.files = vec![file("a/b"), file("c"), file("a/b")]),
        RecordError::DuplicateFilePath("a/b".into()),
    );
    assert_refused(
        with(|b| b.files = vec![file("a/b/c"), file("a/b")]),
        RecordError::FilePathConflict {
            file: "a/b".into(),
            other: "a/b/c".into(),
        },
    );
    assert_accepted(with(|b| {
        b.files = vec![file("a/b"), file("a/bc"), file("ab")]
    }));
}

#[test]
fn file_size_bound() {
    assert_accepted(with(|b| b.files[0].size = i64::MAX as u64));
    let big = with(|b| b.files[0].size = i64::MAX as u64 + 1);
    assert_eq!(
        sign_record(big, &key()).map(|_| ()),
        Err(RecordError::FileTooLarge {
            path: "video/митинг.mp4".into(),
            size: 1 << 63
        })
    );
    assert_eq!(
        sign_record(with(|b| b.created = u64::MAX), &key()).map(|_| ()),
        Err(RecordError::CreatedTooLarge(u64::MAX))
    );
}

#[test]
fn mime_bounds() {
    let mime = |m: &str| with(|b| b.files[0].mime = m.into());
    let field = || "file \"video/митинг.mp4\"".to_string();
    assert_accepted(mime(&format!("a/{}", "b".repeat(MAX_MIME_BYTES - 2))));
    assert_accepted(mime("application/vnd.ms-excel"));
    assert_refused(
        mime(&format!("a/{}", "b".repeat(MAX_MIME_BYTES - 1))),
        RecordError::MimeTooLong { field: field() },
    );
    assert_refused(mime(""), RecordError::MimeEmpty { field: field() });
    for bad in [
        "video",
        "video/",
        "/mp4",
        "video/mp4; codecs=avc1",
        "a/b/c",
        "видео/mp4",
        "-a/b",
    ] {
        assert_refused(
            mime(bad),
            RecordError::MimeMalformed {
                field: field(),
                mime: bad.into(),
            },
        );
    }
}

#[test]
fn thumbnail_bounds() {
    let thumb = |mime: &str, len: usize| {
        with(|b| {
            b.thumbnail = Some(Thumbnail {
                mime: mime.into(),
                bytes: vec![1; len],
            })
        })
    };
    assert_accepted(thumb("image/png", MAX_THUMBNAIL_BYTES));
    assert_accepted(thumb("image/webp", 0));
    assert_refused(
        thumb("image/png", MAX_THUMBNAIL_BYTES + 1),
        RecordError::ThumbnailTooLarge { len: 32769 },
    );
    assert_refused(
        thumb("video/mp4", 10),
        RecordError::ThumbnailNotImage("video/mp4".into()),
    );
    assert_refused(
        thumb("png", 10),
        RecordError::MimeMalformed {
            field: "thumbnail".into(),
            mime: "png".into(),
        },
    );
}

#[test]
fn total_size_bound() {
    // Fill a record to exactly MAX_RECORD_BYTES with in-bounds fields, then go one byte over.
    let mut base = with(|b| {
        b.description = String::new();
        b.thumbnail = Some(Thumbnail {
            mime: "image/png".into(),
            bytes: vec![0; MAX_THUMBNAIL_BYTES],
        });
        b.files = Vec::new();
    });
    while sign_raw(&base).len() < MAX_RECORD_BYTES - MAX_DESCRIPTION_BYTES / 2 {
        base.files
            .push(file(&format!("{:04}{}", base.files.len(), "x".repeat(996))));
    }
    let len_with = |n: usize| {
        sign_raw(&RecordBody {
            description: "d".repeat(n),
            ..base.clone()
        })
        .len()
    };
    let n = (0..=MAX_DESCRIPTION_BYTES)
        .find(|&n| len_with(n) == MAX_RECORD_BYTES)
        .unwrap();
    let full = RecordBody {
        description: "d".repeat(n),
        ..base.clone()
    };
    assert_eq!(
        sign_record(full.clone(), &key()).unwrap().bytes().len(),
        MAX_RECORD_BYTES
    );
    assert_accepted(full.clone());
    // The nonce is part of the record: a body that fits exactly with nonce 0 no longer fits with the longer nonce a
    // search finds, and is refused after the search.
    let body_bytes = encode(&body_to_value(&full));
    let nonce = (0u64..)
        .find(|&n| work_bits_of(&body_bytes, n) >= 12)
        .unwrap();
    assert!(nonce >= 10, "nonce {nonce} is as short as 0");
    assert_eq!(
        sign_record_with_work(full, &key(), 12).map(|_| ()),
        Err(RecordError::TooLarge {
            len: MAX_RECORD_BYTES - 1 + nonce.to_string().len()
        })
    );
    let over = RecordBody {
        description: "d".repeat(n + 1),
        ..base
    };
    assert_refused(
        over,
        RecordError::TooLarge {
            len: MAX_RECORD_BYTES + 1,
        },
    );
}
