//! Reading, checking and writing v1 metainfo (.torrent) files.
//!
//! Every torrent that reaches the engine, from a user, from the node's store or from a peer's BEP 9
//! metadata, is checked here before librqbit sees it: librqbit trusts fields such as `piece length`
//! (a zero divides by zero) and the size of `pieces`. We also rewrite every torrent to the minimal
//! form `d4:info<info>e`: the info dictionary is kept byte for byte (it defines the info-hash), and
//! everything else (trackers, web seeds, comments) is dropped, so nothing outside the node can be
//! contacted because a torrent says so.

use sha1::{Digest, Sha1};

use crate::bencode::{self, BencodeError, Value};

/// Largest .torrent accepted. librqbit refuses BEP 9 metadata above 32 MiB; 16 MiB of `pieces` is
/// already 800,000 pieces.
pub const MAX_TORRENT_BYTES: usize = 16 * 1024 * 1024;
/// Most files in one torrent.
pub const MAX_FILES: usize = 100_000;
/// Deepest directory nesting of a file inside a torrent.
pub const MAX_PATH_DEPTH: usize = 32;
/// Longest file or directory name, in bytes (the usual file system limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Smallest piece accepted from others (BitTorrent clients use 16 KiB and up).
pub const MIN_PIECE_LENGTH: u64 = 1024;
/// Largest piece accepted from others; a piece is held in memory while it is checked.
pub const MAX_PIECE_LENGTH: u64 = 64 * 1024 * 1024;

/// Why bytes are not a torrent this engine will handle.
#[derive(Debug, thiserror::Error)]
pub enum MetainfoError {
    #[error("torrent is {0} bytes, more than the {MAX_TORRENT_BYTES} allowed")]
    TooLarge(usize),
    #[error("torrent is not valid bencode")]
    Bencode(#[from] BencodeError),
    #[error("torrent has no info dictionary")]
    NoInfo,
    #[error("v2-only torrents are not supported (no v1 piece hashes)")]
    V2Only,
    #[error("torrent field `{0}` is missing or has the wrong type")]
    Field(&'static str),
    #[error("piece length {0} is outside {MIN_PIECE_LENGTH}..={MAX_PIECE_LENGTH}")]
    PieceLength(i64),
    #[error("torrent lists {got} piece hashes but its files need {want}")]
    PieceCount { got: u64, want: u64 },
    #[error("torrent has no data (total length 0)")]
    Empty,
    #[error("file length {0} is invalid")]
    FileLength(i64),
    #[error("total length overflows")]
    TotalOverflow,
    #[error("torrent has {0} files, more than the {MAX_FILES} allowed")]
    TooManyFiles(usize),
    #[error("unsafe or invalid name in torrent: {0:?}")]
    BadName(String),
    #[error("path {0:?} appears twice in the torrent")]
    DuplicatePath(String),
}

/// The info-hash of a .torrent file, after the same checks the engine applies before using it.
pub fn infohash_of(torrent: &[u8]) -> Result<[u8; 20], MetainfoError> {
    TorrentMeta::parse(torrent).map(|t| t.infohash)
}

/// A checked .torrent in the only form kolokol writes and keeps: `d4:info<info>e`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinimalTorrent {
    pub infohash: [u8; 20],
    /// The torrent's name: the single file, or the folder holding the files.
    pub name: String,
    /// `d4:info<info>e`, the info dictionary byte for byte as it came (so the info-hash is unchanged), and nothing
    /// else: no tracker (`announce`, `announce-list`), web seed, comment, `created by` or `creation date`.
    pub bytes: Vec<u8>,
}

/// Checks a .torrent (the same checks as every torrent the engine takes) and rewrites it to its minimal form.
pub fn minimal_torrent(torrent: &[u8]) -> Result<MinimalTorrent, MetainfoError> {
    let meta = TorrentMeta::parse(torrent)?;
    Ok(MinimalTorrent {
        infohash: meta.infohash,
        bytes: meta.minimal_torrent(),
        name: meta.name,
    })
}

/// A checked torrent's layout: what a reader of its raw data needs to verify it piece by piece (bundles read file
/// data from a stream and check it against these hashes before trusting any of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentLayout {
    pub infohash: [u8; 20],
    /// The torrent's name: the single file, or the folder holding the files.
    pub name: String,
    /// True for the single-file form: the data is `<dir>/<name>`; otherwise `<dir>/<name>/<components...>`.
    pub single_file: bool,
    pub piece_length: u32,
    /// One SHA-1 per piece, in order, over the files concatenated in `files` order (padding files as zeros).
    pub piece_hashes: Vec<[u8; 20]>,
    pub files: Vec<LayoutFile>,
}

/// One file of a [`TorrentLayout`], in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutFile {
    /// Path components inside the torrent (single-file form: just the name); each checked safe for a file system.
    pub components: Vec<String>,
    pub length: u64,
    /// BEP 47 padding: zeros that count in the pieces but are never stored.
    pub padding: bool,
}

/// Parses and checks a .torrent (the same checks as every torrent the engine takes) and returns its layout.
pub fn torrent_layout(torrent: &[u8]) -> Result<TorrentLayout, MetainfoError> {
    let meta = TorrentMeta::parse(torrent)?;
    let doc = bencode::decode(torrent)?;
    let pieces = doc
        .get(b"info")
        .and_then(|info| info.get(b"pieces"))
        .and_then(Value::as_bytes)
        .ok_or(MetainfoError::Field("pieces"))?;
    let piece_hashes = pieces
        .chunks_exact(20)
        .map(|c| {
            let mut hash = [0u8; 20];
            hash.copy_from_slice(c);
            hash
        })
        .collect();
    Ok(TorrentLayout {
        infohash: meta.infohash,
        name: meta.name,
        single_file: meta.single_file,
        piece_length: meta.piece_length,
        piece_hashes,
        files: meta
            .files
            .into_iter()
            .map(|f| LayoutFile {
                components: f.components,
                length: f.length,
                padding: f.padding,
            })
            .collect(),
    })
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaFile {
    /// Path components inside the torrent (for a single-file torrent: just the name).
    pub components: Vec<String>,
    pub length: u64,
    /// BEP 47 padding file: occupies piece space but is never written to disk.
    pub padding: bool,
}

/// A checked v1 torrent.
#[derive(Debug, Clone)]
pub(crate) struct TorrentMeta {
    pub infohash: [u8; 20],
    pub name: String,
    /// True for the single-file form (`length`), false for the `files` form, which librqbit stores
    /// one directory deeper (under `name`).
    pub single_file: bool,
    pub files: Vec<MetaFile>,
    pub piece_length: u32,
    pub piece_count: u64,
    info_bytes: Vec<u8>,
}

impl TorrentMeta {
    /// Parses and checks a .torrent file.
    pub(crate) fn parse(torrent: &[u8]) -> Result<Self, MetainfoError> {
        if torrent.len() > MAX_TORRENT_BYTES {
            return Err(MetainfoError::TooLarge(torrent.len()));
        }
        let doc = bencode::decode(torrent)?;
        let info = doc.get(b"info").ok_or(MetainfoError::NoInfo)?;
        let raw = info.raw_dict().ok_or(MetainfoError::Field("info"))?;
        Self::from_info(info, raw)
    }

    /// Checks an info dictionary given as its raw bytes (BEP 9 metadata).
    pub(crate) fn from_info_bytes(info_bytes: &[u8]) -> Result<Self, MetainfoError> {
        if info_bytes.len() > MAX_TORRENT_BYTES {
            return Err(MetainfoError::TooLarge(info_bytes.len()));
        }
        let info = bencode::decode(info_bytes)?;
        Self::from_info(&info, info_bytes)
    }

    fn from_info(info: &Value<'_>, raw: &[u8]) -> Result<Self, MetainfoError> {
        if raw.first() != Some(&b'd') {
            return Err(MetainfoError::Field("info"));
        }
        let name = info
            .get(b"name")
            .and_then(Value::as_bytes)
            .ok_or(MetainfoError::Field("name"))?;
        let name = checked_component(name)?;

        let pieces = match info.get(b"pieces") {
            Some(p) => p.as_bytes().ok_or(MetainfoError::Field("pieces"))?,
            None if info.get(b"meta version").is_some() => return Err(MetainfoError::V2Only),
            None => return Err(MetainfoError::Field("pieces")),
        };
        let piece_length = info
            .get(b"piece length")
            .and_then(Value::as_int)
            .ok_or(MetainfoError::Field("piece length"))?;
        let piece_length = u32::try_from(piece_length)
            .ok()
            .filter(|&p| (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&u64::from(p)))
            .ok_or(MetainfoError::PieceLength(piece_length))?;

        let (single_file, files) = match (info.get(b"length"), info.get(b"files")) {
            (Some(length), None) => {
                let length = length.as_int().ok_or(MetainfoError::Field("length"))?;
                let length = checked_length(length)?;
                let file = MetaFile {
                    components: vec![name.clone()],
                    length,
                    padding: false,
                };
                (true, vec![file])
            }
            (None, Some(files)) => {
                let files = files.as_list().ok_or(MetainfoError::Field("files"))?;
                (false, checked_files(files)?)
            }
            _ => return Err(MetainfoError::Field("length or files")),
        };

        let mut total: u64 = 0;
        for f in &files {
            total = total
                .checked_add(f.length)
                .ok_or(MetainfoError::TotalOverflow)?;
        }
        if total == 0 {
            return Err(MetainfoError::Empty);
        }
        let want = total.div_ceil(u64::from(piece_length));
        let got = (pieces.len() / 20) as u64;
        if pieces.len() % 20 != 0 || got != want {
            return Err(MetainfoError::PieceCount { got, want });
        }

        Ok(TorrentMeta {
            infohash: Sha1::digest(raw).into(),
            name,
            single_file,
            files,
            piece_length,
            piece_count: want,
            info_bytes: raw.to_vec(),
        })
    }

    /// The torrent as `d4:info<info>e`: same info-hash, no trackers or other outside addresses.
    pub(crate) fn minimal_torrent(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.info_bytes.len() + 8);
        out.extend_from_slice(b"d4:info");
        out.extend_from_slice(&self.info_bytes);
        out.push(b'e');
        out
    }

    /// Files that exist on disk (no padding), as ('/'-joined path inside the torrent, length).
    pub(crate) fn listed_files(&self) -> Vec<(String, u64)> {
        self.files
            .iter()
            .filter(|f| !f.padding)
            .map(|f| (f.components.join("/"), f.length))
            .collect()
    }
}

fn checked_length(length: i64) -> Result<u64, MetainfoError> {
    u64::try_from(length).map_err(|_| MetainfoError::FileLength(length))
}

fn checked_files(list: &[Value<'_>]) -> Result<Vec<MetaFile>, MetainfoError> {
    if list.is_empty() {
        return Err(MetainfoError::Field("files"));
    }
    if list.len() > MAX_FILES {
        return Err(MetainfoError::TooManyFiles(list.len()));
    }
    let mut files = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    for entry in list {
        let length = entry
            .get(b"length")
            .and_then(Value::as_int)
            .ok_or(MetainfoError::Field("files.length"))?;
        let length = checked_length(length)?;
        let path = entry
            .get(b"path")
            .and_then(Value::as_list)
            .filter(|p| !p.is_empty() && p.len() <= MAX_PATH_DEPTH)
            .ok_or(MetainfoError::Field("files.path"))?;
        let components = path
            .iter()
            .map(|c| {
                c.as_bytes()
                    .ok_or(MetainfoError::Field("files.path"))
                    .and_then(checked_component)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let padding = entry
            .get(b"attr")
            .and_then(Value::as_bytes)
            .is_some_and(|a| a.contains(&b'p'));
        // Padding files may legitimately share a name (".pad/16384"); real files may not.
        if !padding && !seen.insert(components.join("/")) {
            return Err(MetainfoError::DuplicatePath(components.join("/")));
        }
        files.push(MetaFile {
            components,
            length,
            padding,
        });
    }
    Ok(files)
}

/// One path component: UTF-8, not empty, not `.` or `..`, no separators or NUL, and short enough
/// for a file system. Anything else could write outside the download folder or fail half-way.
pub(crate) fn checked_component(raw: &[u8]) -> Result<String, MetainfoError> {
    let lossy = || MetainfoError::BadName(String::from_utf8_lossy(raw).into_owned());
    let s = std::str::from_utf8(raw).map_err(|_| lossy())?;
    let bad = s.is_empty()
        || s == "."
        || s == ".."
        || s.len() > MAX_NAME_BYTES
        || s.chars().any(|c| c == '/' || c == '\\' || c == '\0');
    if bad {
        return Err(lossy());
    }
    Ok(s.to_owned())
}

/// Writes the info dictionary of a torrent we create. Keys are in bencode's sorted order.
pub(crate) fn build_info(
    name: &str,
    single_file: bool,
    files: &[(Vec<String>, u64)],
    piece_length: u32,
    pieces: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(pieces.len() + 64 * files.len() + 128);
    out.push(b'd');
    if single_file {
        let length = files.first().map(|(_, l)| *l).unwrap_or(0);
        bencode::put_bytes(&mut out, b"length");
        bencode::put_int(&mut out, length);
    } else {
        bencode::put_bytes(&mut out, b"files");
        out.push(b'l');
        for (components, length) in files {
            out.push(b'd');
            bencode::put_bytes(&mut out, b"length");
            bencode::put_int(&mut out, *length);
            bencode::put_bytes(&mut out, b"path");
            out.push(b'l');
            for c in components {
                bencode::put_bytes(&mut out, c.as_bytes());
            }
            out.push(b'e');
            out.push(b'e');
        }
        out.push(b'e');
    }
    bencode::put_bytes(&mut out, b"name");
    bencode::put_bytes(&mut out, name.as_bytes());
    bencode::put_bytes(&mut out, b"piece length");
    bencode::put_int(&mut out, u64::from(piece_length));
    bencode::put_bytes(&mut out, b"pieces");
    bencode::put_bytes(&mut out, pieces);
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent_with_info(info: &[u8]) -> Vec<u8> {
        let mut t = b"d8:announce20:http://tracker/annou4:info".to_vec();
        t.extend_from_slice(info);
        t.push(b'e');
        t
    }

    #[test]
    fn built_info_parses_back_and_drops_trackers() {
        let pieces = [7u8; 40];
        let files = vec![
            (vec!["a".to_owned(), "b.txt".to_owned()], 20_000),
            (vec!["c".to_owned()], 100),
        ];
        let info = build_info("dir", false, &files, 16384, &pieces);
        let t = TorrentMeta::parse(&torrent_with_info(&info)).unwrap();
        assert_eq!(t.name, "dir");
        assert!(!t.single_file);
        assert_eq!(t.piece_count, 2);
        assert_eq!(
            t.listed_files(),
            vec![("a/b.txt".to_owned(), 20_000), ("c".to_owned(), 100)]
        );
        let expected_hash: [u8; 20] = Sha1::digest(&info).into();
        assert_eq!(t.infohash, expected_hash);
        let minimal = t.minimal_torrent();
        assert!(!minimal.windows(7).any(|w| w == b"tracker"));
        assert_eq!(
            TorrentMeta::parse(&minimal).unwrap().infohash,
            expected_hash
        );
    }

    #[test]
    fn refuses_wrong_piece_count_zero_piece_length_and_unsafe_paths() {
        let ok_files = vec![(vec!["f".to_owned()], 10)];
        let cases: Vec<Vec<u8>> = vec![
            build_info("x", true, &ok_files, 16384, &[0u8; 40]),
            build_info("x", true, &ok_files, 16384, &[0u8; 19]),
            build_info("x", true, &ok_files, 0, &[0u8; 20]),
            build_info("..", true, &ok_files, 16384, &[0u8; 20]),
            build_info("a/b", true, &ok_files, 16384, &[0u8; 20]),
            build_info("x", true, &[(vec!["f".to_owned()], 0)], 16384, &[]),
            build_info(
                "x",
                false,
                &[(vec!["..".to_owned()], 10)],
                16384,
                &[0u8; 20],
            ),
            build_info(
                "x",
                false,
                &[(vec!["f".to_owned()], 10), (vec!["f".to_owned()], 10)],
                16384,
                &[0u8; 20],
            ),
            build_info("x", false, &[(vec![], 10)], 16384, &[0u8; 20]),
        ];
        for info in cases {
            assert!(
                TorrentMeta::parse(&torrent_with_info(&info)).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(&info)
            );
        }
    }

    #[test]
    fn minimal_torrent_keeps_the_info_and_drops_everything_else() {
        let info = build_info("f", true, &[(vec!["f".to_owned()], 10)], 16384, &[0u8; 20]);
        let mut t = b"d8:announce9:http://t/7:comment2:hi10:created by6:rqbit 13:creation datei1700000000e4:info".to_vec();
        t.extend_from_slice(&info);
        t.push(b'e');
        let minimal = minimal_torrent(&t).unwrap();
        let mut expected = b"d4:info".to_vec();
        expected.extend_from_slice(&info);
        expected.push(b'e');
        assert_eq!(minimal.bytes, expected);
        assert_eq!(minimal.infohash, <[u8; 20]>::from(Sha1::digest(&info)));
        assert_eq!(minimal.name, "f");
        assert!(matches!(
            minimal_torrent(&t[..t.len() - 1]),
            Err(MetainfoError::Bencode(_))
        ));
    }

    #[test]
    fn refuses_v2_only_and_missing_info() {
        let v2 = b"d4:infod12:meta versioni2e4:name1:x12:piece lengthi16384eee";
        assert!(matches!(TorrentMeta::parse(v2), Err(MetainfoError::V2Only)));
        assert!(matches!(
            TorrentMeta::parse(b"d3:fooi1ee"),
            Err(MetainfoError::NoInfo)
        ));
    }

    #[test]
    fn layout_has_piece_hashes_and_files_in_order() {
        let pieces: Vec<u8> = (0u8..40).collect();
        let files = vec![(vec!["a".to_owned()], 20_000), (vec!["c".to_owned()], 100)];
        let info = build_info("dir", false, &files, 16384, &pieces);
        let layout = torrent_layout(&torrent_with_info(&info)).unwrap();
        assert_eq!(layout.name, "dir");
        assert_eq!(layout.piece_length, 16384);
        assert_eq!(layout.piece_hashes.len(), 2);
        assert_eq!(layout.piece_hashes[1][0], 20);
        assert_eq!(layout.files[1].components, vec!["c".to_owned()]);
        assert_eq!(layout.infohash, <[u8; 20]>::from(Sha1::digest(&info)));
        assert!(torrent_layout(b"d3:fooi1ee").is_err());
    }

    #[test]
    fn padding_files_are_counted_but_not_listed() {
        let info = b"d5:filesld6:lengthi10e4:pathl1:aeed4:attr1:p6:lengthi6e4:pathl4:.pad2:16eed6:lengthi4e4:pathl1:beee4:name1:x12:piece lengthi1024e6:pieces20:01234567890123456789e";
        let t = TorrentMeta::from_info_bytes(info).unwrap();
        assert_eq!(t.files.iter().map(|f| f.length).sum::<u64>(), 20);
        assert_eq!(
            t.listed_files(),
            vec![("a".to_owned(), 10), ("b".to_owned(), 4)]
        );
    }
}
