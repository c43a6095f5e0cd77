//! Writing a bundle, one publication at a time. File data is copied through one fixed buffer and verified against
//! the torrent's piece hashes on the way, so the writer's memory does not depend on the size of anything it writes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use kolokol_transfer::metainfo::{TorrentLayout, torrent_layout};

use crate::format::{
    CHUNK, DATA_FILES, DATA_NONE, FORMAT_VERSION, HashingWriter, MAGIC, MAX_METADATA_BYTES,
    MAX_PUBLICATIONS, MAX_RECORD_BYTES, MAX_TORRENT_BYTES, TAG_END, TAG_PUBLICATION,
};
use crate::pieces::PieceVerifier;
use crate::{BundleError, FileCheck, file_checks, stored_path};

/// Writes a bundle to any byte sink. Call [`BundleWriter::finish`] at the end: without its trailer a bundle is
/// refused as truncated.
pub struct BundleWriter<W: Write> {
    out: HashingWriter<W>,
    publications: u64,
    files: u64,
    data_bytes: u64,
    metadata_bytes: u64,
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle (writes the magic bytes and the format version).
    pub fn new(out: W) -> Result<Self, BundleError> {
        let mut out = HashingWriter::new(out);
        out.framing(&MAGIC)?;
        out.framing(&FORMAT_VERSION.to_be_bytes())?;
        Ok(BundleWriter {
            out,
            publications: 0,
            files: 0,
            data_bytes: 0,
            metadata_bytes: 0,
        })
    }

    /// Adds a publication without its data: the signed record and, when known, its torrent.
    pub fn add_record(&mut self, record: &[u8], torrent: Option<&[u8]>) -> Result<(), BundleError> {
        if let Some(torrent) = torrent {
            torrent_layout(torrent).map_err(BundleError::Torrent)?;
        }
        self.section_head(record, torrent.unwrap_or_default())?;
        self.out.framing(&[DATA_NONE])
    }

    /// Adds a publication with its data, read from `data_dir` laid out as the engine keeps it
    /// (`data_dir/<name>` for a single file, `data_dir/<name>/<path>` otherwise). Every piece is verified while
    /// it is copied; the result says which files matched their hashes (a damaged file is still written, and a
    /// reader will find it damaged too).
    pub fn add_publication(
        &mut self,
        record: &[u8],
        torrent: &[u8],
        data_dir: &Path,
    ) -> Result<Vec<FileCheck>, BundleError> {
        let layout = torrent_layout(torrent).map_err(BundleError::Torrent)?;
        // Sizes are checked before the section starts, so a missing or resized file fails before any byte of it.
        for file in layout.files.iter().filter(|f| !f.padding) {
            let path = stored_path(&layout, data_dir, file);
            let size = std::fs::metadata(&path)
                .map_err(|source| BundleError::File {
                    path: path.clone(),
                    source,
                })?
                .len();
            if size != file.length {
                return Err(BundleError::SizeMismatch {
                    path,
                    actual: size,
                    expected: file.length,
                });
            }
        }
        self.section_head(record, torrent)?;
        self.out.framing(&[DATA_FILES])?;
        self.write_files(&layout, data_dir)
    }

    fn write_files(
        &mut self,
        layout: &TorrentLayout,
        data_dir: &Path,
    ) -> Result<Vec<FileCheck>, BundleError> {
        let mut verifier = PieceVerifier::new(layout);
        let mut buf = vec![0u8; CHUNK];
        for file in &layout.files {
            if file.padding {
                verifier.update_zeros(file.length);
                continue;
            }
            let path = stored_path(layout, data_dir, file);
            let io = |source| BundleError::File {
                path: path.clone(),
                source,
            };
            let mut input = File::open(&path).map_err(io)?;
            self.out.framing(&file.length.to_be_bytes())?;
            let mut left = file.length;
            while left > 0 {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
                let n = input.read(&mut buf[..want]).map_err(io)?;
                if n == 0 {
                    // The file shrank after its size was checked; the section cannot be completed honestly.
                    return Err(BundleError::SizeMismatch {
                        path: path.clone(),
                        actual: file.length - left,
                        expected: file.length,
                    });
                }
                verifier.update(&buf[..n]);
                self.out.content(&buf[..n])?;
                left -= n as u64;
            }
            self.files += 1;
            self.data_bytes += file.length;
        }
        Ok(file_checks(layout, &verifier.file_results()))
    }

    fn section_head(&mut self, record: &[u8], torrent: &[u8]) -> Result<(), BundleError> {
        if record.is_empty() || record.len() > MAX_RECORD_BYTES {
            return Err(BundleError::TooLarge {
                what: "record",
                len: record.len() as u64,
                max: MAX_RECORD_BYTES as u64,
            });
        }
        if torrent.len() > MAX_TORRENT_BYTES {
            return Err(BundleError::TooLarge {
                what: "torrent",
                len: torrent.len() as u64,
                max: MAX_TORRENT_BYTES as u64,
            });
        }
        if self.publications >= MAX_PUBLICATIONS {
            return Err(BundleError::TooLarge {
                what: "publication count",
                len: self.publications + 1,
                max: MAX_PUBLICATIONS,
            });
        }
        let metadata = self.metadata_bytes + record.len() as u64 + torrent.len() as u64;
        if metadata > MAX_METADATA_BYTES {
            return Err(BundleError::TooLarge {
                what: "records and torrents in one bundle",
                len: metadata,
                max: MAX_METADATA_BYTES,
            });
        }
        self.out.framing(&[TAG_PUBLICATION])?;
        self.out.framing(&(record.len() as u32).to_be_bytes())?;
        self.out.framing(record)?;
        self.out.framing(&(torrent.len() as u32).to_be_bytes())?;
        self.out.framing(torrent)?;
        self.publications += 1;
        self.metadata_bytes = metadata;
        Ok(())
    }

    /// Publications added so far.
    pub fn publications(&self) -> u64 {
        self.publications
    }

    /// File bytes written so far.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Writes the trailer (counts and the SHA-256 of every byte before the hash except file contents), flushes,
    /// and returns the sink.
    pub fn finish(mut self) -> Result<W, BundleError> {
        self.out.framing(&[TAG_END])?;
        self.out.framing(&self.publications.to_be_bytes())?;
        self.out.framing(&self.files.to_be_bytes())?;
        self.out.framing(&self.data_bytes.to_be_bytes())?;
        let digest = self.out.digest();
        self.out.content(&digest)?;
        self.out.into_inner()
    }
}
