//! Reading a bundle: framing checked and hashed as it streams by, every record validated, file data written straight
//! into a staging directory while its pieces are verified. Nothing is trusted until the trailer has matched; the
//! caller commits what was staged only after [`read_bundle`] returned `Ok`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kolokol_core::record::{RecordError, SignedRecord, ValidationContext, validate_record};
use kolokol_transfer::metainfo::{TorrentLayout, torrent_layout};

use crate::format::{
    CHUNK, DATA_FILES, DATA_NONE, FORMAT_VERSION, HashingReader, MAGIC, MAX_METADATA_BYTES,
    MAX_PUBLICATIONS, MAX_RECORD_BYTES, MAX_TORRENT_BYTES, TAG_END, TAG_PUBLICATION,
};
use crate::pieces::PieceVerifier;
use crate::{BundleError, FileCheck, file_checks, stored_path};

/// What the reader needs to know from its caller.
pub struct ReadOptions<'a> {
    /// Records are validated against this (network, clock) with `kolokol_core::record::validate_record`.
    pub validation: ValidationContext,
    /// Asked once for each valid record whose torrent matches it and whose data the bundle carries: `false` reads
    /// past the data without staging it (the caller already holds it, or will refuse the record).
    pub want_data: &'a mut dyn FnMut(&SignedRecord) -> bool,
}

/// One publication of a bundle that was read to the end and whose trailer matched.
#[derive(Debug)]
pub struct StagedPublication {
    /// Position in the bundle, from 0.
    pub index: u64,
    /// The record exactly as the bundle carried it.
    pub record_bytes: Vec<u8>,
    /// The record, if it validated.
    pub record: Result<SignedRecord, RecordError>,
    /// The torrent (checked as the engine checks torrents), when the bundle carried one.
    pub torrent: Option<Vec<u8>>,
    /// The torrent's name (its file or folder), when a torrent was carried.
    pub name: Option<String>,
    pub data: DataOutcome,
}

/// What became of a publication's file data.
#[derive(Debug)]
pub enum DataOutcome {
    /// The bundle carried the record (and maybe the torrent) only.
    NotInBundle,
    /// The data was in the bundle but was read past, not staged.
    Skipped(SkipReason),
    /// The data was staged in `dir`, laid out as the engine keeps it (`dir/<name>` or `dir/<name>/<path>`). Only
    /// files whose every piece verified are left there; the damaged ones were removed.
    Staged { dir: PathBuf, files: Vec<FileCheck> },
}

impl DataOutcome {
    /// Whether the data was staged and every file of it verified.
    pub fn all_good(&self) -> bool {
        matches!(self, DataOutcome::Staged { files, .. } if files.iter().all(|f| f.good))
    }
}

/// Why data was read past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The caller's `want_data` said no.
    NotWanted,
    /// The record did not validate.
    InvalidRecord,
    /// The torrent's infohash is not the one the record names.
    TorrentMismatch,
}

/// Everything a complete, intact bundle held.
#[derive(Debug)]
pub struct BundleContents {
    pub publications: Vec<StagedPublication>,
    /// File bytes the bundle carried (staged or not).
    pub data_bytes: u64,
}

/// Reads a whole bundle from `input`, staging wanted data under `staging` (which must exist and be empty; the
/// caller removes it afterwards, whatever the result). Memory is bounded by the format's caps on records and
/// torrents; file data passes through one 64 KiB buffer.
///
/// Returns an error, and nothing the caller should keep, if the bundle is truncated, malformed, of another version,
/// or its checksum or counts do not match. A damaged file (a piece that does not match its hash) is not an error:
/// it is reported in that publication's [`DataOutcome`].
pub fn read_bundle<R: Read>(
    input: R,
    staging: &Path,
    options: ReadOptions<'_>,
) -> Result<BundleContents, BundleError> {
    let mut input = HashingReader::new(input);
    let mut magic = [0u8; 8];
    input.framing(&mut magic, "the magic bytes")?;
    if magic != MAGIC {
        return Err(BundleError::NotABundle);
    }
    let mut version = [0u8; 2];
    input.framing(&mut version, "the format version")?;
    let version = u16::from_be_bytes(version);
    if version != FORMAT_VERSION {
        return Err(BundleError::Version(version));
    }
    let mut reader = Reader {
        input,
        staging,
        options,
        metadata_bytes: 0,
        files: 0,
        data_bytes: 0,
    };
    let mut publications = Vec::new();
    loop {
        match reader.input.u8("a section or the trailer")? {
            TAG_PUBLICATION => {
                if publications.len() as u64 >= MAX_PUBLICATIONS {
                    return Err(BundleError::TooLarge {
                        what: "publication count",
                        len: publications.len() as u64 + 1,
                        max: MAX_PUBLICATIONS,
                    });
                }
                let index = publications.len() as u64;
                publications.push(reader.publication(index)?);
            }
            TAG_END => {
                reader.trailer(publications.len() as u64)?;
                return Ok(BundleContents {
                    publications,
                    data_bytes: reader.data_bytes,
                });
            }
            tag => {
                return Err(reader.malformed(format!("unknown section tag 0x{tag:02x}")));
            }
        }
    }
}

struct Reader<'s, 'o, R> {
    input: HashingReader<R>,
    staging: &'s Path,
    options: ReadOptions<'o>,
    metadata_bytes: u64,
    files: u64,
    data_bytes: u64,
}

impl<R: Read> Reader<'_, '_, R> {
    fn malformed(&self, reason: String) -> BundleError {
        BundleError::Malformed {
            offset: self.input.offset(),
            reason,
        }
    }

    /// A length-prefixed blob, its length checked against `max` and the metadata budget before allocating.
    fn blob(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, BundleError> {
        let len = u64::from(self.input.u32(what)?);
        if len > max as u64 {
            return Err(BundleError::TooLarge {
                what,
                len,
                max: max as u64,
            });
        }
        let total = self.metadata_bytes + len;
        if total > MAX_METADATA_BYTES {
            return Err(BundleError::TooLarge {
                what: "records and torrents in one bundle",
                len: total,
                max: MAX_METADATA_BYTES,
            });
        }
        self.metadata_bytes = total;
        let mut bytes = vec![0u8; len as usize];
        self.input.framing(&mut bytes, what)?;
        Ok(bytes)
    }

    fn publication(&mut self, index: u64) -> Result<StagedPublication, BundleError> {
        let record_bytes = self.blob("record", MAX_RECORD_BYTES)?;
        if record_bytes.is_empty() {
            return Err(self.malformed("empty record".into()));
        }
        let torrent = self.blob("torrent", MAX_TORRENT_BYTES)?;
        let layout = if torrent.is_empty() {
            None
        } else {
            Some(
                torrent_layout(&torrent)
                    .map_err(|e| self.malformed(format!("publication {index}: torrent: {e}")))?,
            )
        };
        let record = validate_record(&record_bytes, &self.options.validation);
        let flag = self.input.u8("the data flag")?;
        let data = match (flag, &layout) {
            (DATA_NONE, _) => DataOutcome::NotInBundle,
            (DATA_FILES, Some(layout)) => {
                let skip = match &record {
                    Err(_) => Some(SkipReason::InvalidRecord),
                    Ok(r) if r.body().infohash.0 != layout.infohash => {
                        Some(SkipReason::TorrentMismatch)
                    }
                    Ok(r) if !(self.options.want_data)(r) => Some(SkipReason::NotWanted),
                    Ok(_) => None,
                };
                match skip {
                    Some(reason) => {
                        self.files_of(layout, None)?;
                        DataOutcome::Skipped(reason)
                    }
                    None => {
                        let dir = self.staging.join(index.to_string());
                        let files = self.files_of(layout, Some(&dir))?;
                        DataOutcome::Staged { dir, files }
                    }
                }
            }
            (DATA_FILES, None) => {
                return Err(self.malformed(format!("publication {index} has data but no torrent")));
            }
            (other, _) => return Err(self.malformed(format!("unknown data flag {other}"))),
        };
        Ok(StagedPublication {
            index,
            record_bytes,
            record,
            torrent: (!torrent.is_empty()).then_some(torrent),
            name: layout.map(|l| l.name),
            data,
        })
    }

    /// Reads every non-padding file of `layout`; writes and verifies them under `dir` if given, else discards.
    fn files_of(
        &mut self,
        layout: &TorrentLayout,
        dir: Option<&Path>,
    ) -> Result<Vec<FileCheck>, BundleError> {
        let mut verifier = PieceVerifier::new(layout);
        let mut buf = vec![0u8; CHUNK];
        for file in &layout.files {
            if file.padding {
                verifier.update_zeros(file.length);
                continue;
            }
            let length = self.input.u64("a file length")?;
            if length != file.length {
                return Err(self.malformed(format!(
                    "file {:?} is framed as {length} bytes but its torrent says {}",
                    file.components.join("/"),
                    file.length
                )));
            }
            let mut out = match dir {
                Some(dir) => Some(create_staged(&stored_path(layout, dir, file))?),
                None => None,
            };
            let mut left = length;
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
                self.input
                    .content(&mut buf[..n], "the end of a file's data")?;
                if let Some((out, path)) = &mut out {
                    verifier.update(&buf[..n]);
                    out.write_all(&buf[..n])
                        .map_err(|source| BundleError::File {
                            path: path.clone(),
                            source,
                        })?;
                }
                left -= n as u64;
            }
            self.files += 1;
            self.data_bytes += length;
        }
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let checks = file_checks(layout, &verifier.file_results());
        // Damaged data must never be mistaken for good: only verified files stay in the staging directory.
        for (file, check) in layout.files.iter().filter(|f| !f.padding).zip(&checks) {
            if !check.good {
                let path = stored_path(layout, dir, file);
                fs::remove_file(&path).map_err(|source| BundleError::File { path, source })?;
            }
        }
        Ok(checks)
    }

    fn trailer(&mut self, publications: u64) -> Result<(), BundleError> {
        let counted = [publications, self.files, self.data_bytes];
        let mut stated = [0u64; 3];
        for (slot, what) in
            stated
                .iter_mut()
                .zip(["the publication count", "the file count", "the data size"])
        {
            *slot = self.input.u64(what)?;
        }
        let expected = self.input.digest();
        let mut stored = [0u8; 32];
        self.input.content(&mut stored, "the checksum")?;
        if stored != expected {
            return Err(BundleError::Checksum);
        }
        if stated != counted {
            return Err(BundleError::Counts {
                stated: format!("{stated:?}"),
                found: format!("{counted:?}"),
            });
        }
        if !self.input.at_end()? {
            return Err(self.malformed("bytes after the trailer".into()));
        }
        Ok(())
    }
}

fn create_staged(path: &Path) -> Result<(File, PathBuf), BundleError> {
    let io = |source| BundleError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    Ok((file, path.to_path_buf()))
}
