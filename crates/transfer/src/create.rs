//! Hashing a file or a directory into a v1 torrent.
//!
//! We hash ourselves instead of calling librqbit's `create_torrent`, which (9.1) lists directory
//! entries in whatever order the file system returns them (the same folder can give two different
//! info-hashes), panics on a file name that is not UTF-8, and writes a wrong piece count when the
//! data ends on a piece boundary or the last file is empty. Here files are sorted by name, every
//! name is checked, and pieces are hashed on all cores while one thread reads the data in order.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha1::{Digest, Sha1};

use crate::error::TransferError;
use crate::metainfo::{self, MAX_FILES, MAX_PATH_DEPTH};

/// A file found in the content, with what it looked like when hashing started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentFile {
    pub components: Vec<String>,
    pub path: PathBuf,
    pub length: u64,
    pub modified: Option<SystemTime>,
}

/// The result of hashing content on disk.
#[derive(Debug, Clone)]
pub(crate) struct Hashed {
    pub files: Vec<ContentFile>,
    /// The bencoded info dictionary.
    pub info: Vec<u8>,
}

/// Piece length for `total` bytes: 256 KiB and up, doubling until there are at most 2048 pieces,
/// capped at 16 MiB. Small pieces let a viewer start playing sooner; the cap keeps the piece list
/// (20 bytes a piece, sent to every new peer) small for large videos.
pub(crate) fn piece_length_for(total: u64) -> u32 {
    let mut len: u32 = 256 * 1024;
    while len < 16 * 1024 * 1024 && total.div_ceil(u64::from(len)) > 2048 {
        len *= 2;
    }
    len
}

/// Lists and hashes `content` (blocking: run it on a blocking thread).
pub(crate) fn hash_content(content: &Path) -> Result<Hashed, TransferError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TransferError::Io { path, source }
    };
    let meta = fs::symlink_metadata(content).map_err(io_err(content))?;
    let raw_name = content
        .file_name()
        .ok_or_else(|| invalid(content, "has no file name"))?;
    let name = component(raw_name, content)?;

    let single_file = meta.is_file();
    let files = if single_file {
        vec![ContentFile {
            components: vec![name.clone()],
            path: content.to_path_buf(),
            length: meta.len(),
            modified: meta.modified().ok(),
        }]
    } else if meta.is_dir() {
        let mut files = Vec::new();
        walk(content, &mut Vec::new(), &mut files)?;
        files
    } else {
        return Err(invalid(
            content,
            "is neither a regular file nor a directory",
        ));
    };

    let total = files
        .iter()
        .try_fold(0u64, |acc, f| acc.checked_add(f.length))
        .ok_or_else(|| invalid(content, "is too large"))?;
    if total == 0 {
        return Err(invalid(content, "holds no data (0 bytes)"));
    }
    let piece_length = piece_length_for(total);
    let pieces = hash_pieces(&files, piece_length, total)?;

    // A file that changed while we read it would give a torrent that matches neither version.
    for f in &files {
        let now = fs::metadata(&f.path).map_err(io_err(&f.path))?;
        if now.len() != f.length || now.modified().ok() != f.modified {
            return Err(TransferError::ContentChanged {
                path: f.path.clone(),
            });
        }
    }

    let listed: Vec<(Vec<String>, u64)> = files
        .iter()
        .map(|f| (f.components.clone(), f.length))
        .collect();
    let info = metainfo::build_info(&name, single_file, &listed, piece_length, &pieces);
    Ok(Hashed { files, info })
}

fn invalid(path: &Path, reason: &str) -> TransferError {
    TransferError::InvalidContent {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

fn component(raw: &std::ffi::OsStr, path: &Path) -> Result<String, TransferError> {
    let s = raw
        .to_str()
        .ok_or_else(|| invalid(path, "has a name that is not UTF-8"))?;
    metainfo::checked_component(s.as_bytes())
        .map_err(|_| invalid(path, "has a name that cannot be used in a torrent"))
}

/// Collects regular files under `dir`, sorted by name at every level. Symbolic links and special
/// files are refused rather than skipped: silently leaving out part of what the user chose to
/// publish, or following a link out of the folder, would both surprise.
fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<ContentFile>,
) -> Result<(), TransferError> {
    if prefix.len() >= MAX_PATH_DEPTH {
        return Err(invalid(dir, "is nested too deeply"));
    }
    let read = fs::read_dir(dir).map_err(|source| TransferError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|source| TransferError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        entries.push(entry.path());
        if entries.len() > MAX_FILES {
            return Err(invalid(dir, "holds too many entries"));
        }
    }
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).map_err(|source| TransferError::Io {
            path: path.clone(),
            source,
        })?;
        let raw_name = path
            .file_name()
            .ok_or_else(|| invalid(&path, "has no file name"))?;
        let name = component(raw_name, &path)?;
        prefix.push(name);
        if meta.is_file() {
            if out.len() >= MAX_FILES {
                return Err(invalid(&path, "is one file too many"));
            }
            out.push(ContentFile {
                components: prefix.clone(),
                path: path.clone(),
                length: meta.len(),
                modified: meta.modified().ok(),
            });
        } else if meta.is_dir() {
            walk(&path, prefix, out)?;
        } else {
            return Err(invalid(&path, "is a symbolic link or special file"));
        }
        prefix.pop();
    }
    Ok(())
}

type Job = (usize, Vec<u8>);
type Done = (usize, [u8; 20], Vec<u8>);

/// SHA-1 of every piece of the concatenated files. One thread reads in order (sequential reads are
/// what disks do best); the others hash whole pieces, which are independent of each other.
fn hash_pieces(
    files: &[ContentFile],
    piece_length: u32,
    total: u64,
) -> Result<Vec<u8>, TransferError> {
    let piece_length = piece_length as usize;
    let piece_count = usize::try_from(total.div_ceil(piece_length as u64)).map_err(|_| {
        invalid(
            files
                .first()
                .map(|f| f.path.as_path())
                .unwrap_or(Path::new("")),
            "is too large",
        )
    })?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let mut hashes = vec![0u8; piece_count * 20];

    std::thread::scope(|scope| {
        let (job_tx, job_rx) = sync_channel::<Job>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<Done>();
        for _ in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || hash_worker(&job_rx, &done_tx));
        }
        drop(done_tx);

        // Buffers circulate reader -> worker -> reader, so memory stays at a few pieces.
        let mut free: Vec<Vec<u8>> = (0..workers * 2 + 1)
            .map(|_| Vec::with_capacity(piece_length))
            .collect();
        let mut record = |(index, hash, buf): Done, free: &mut Vec<Vec<u8>>| {
            hashes[index * 20..index * 20 + 20].copy_from_slice(&hash);
            free.push(buf);
        };
        let mut received = 0usize;
        let mut reader = PieceReader::new(files);
        for index in 0..piece_count {
            let mut buf = match free.pop() {
                Some(buf) => buf,
                None => {
                    let done = done_rx.recv().map_err(|_| worker_died())?;
                    received += 1;
                    record(done, &mut free);
                    free.pop().ok_or_else(worker_died)?
                }
            };
            let want = piece_length.min((total - (index * piece_length) as u64) as usize);
            buf.resize(want, 0);
            reader.fill(&mut buf)?;
            job_tx.send((index, buf)).map_err(|_| worker_died())?;
        }
        drop(job_tx);
        while received < piece_count {
            let done = done_rx.recv().map_err(|_| worker_died())?;
            received += 1;
            record(done, &mut free);
        }
        Ok::<(), TransferError>(())
    })?;
    Ok(hashes)
}

fn hash_worker(jobs: &Mutex<Receiver<Job>>, done: &std::sync::mpsc::Sender<Done>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((index, buf)) = job else { return };
        let hash: [u8; 20] = Sha1::digest(&buf).into();
        if done.send((index, hash, buf)).is_err() {
            return;
        }
    }
}

fn worker_died() -> TransferError {
    TransferError::Internal("a hashing thread stopped unexpectedly".to_owned())
}

/// Reads the files one after the other as one stream of bytes, exactly as long as they were when
/// listed: a file that got shorter is an error, not a silently shorter torrent.
struct PieceReader<'a> {
    files: &'a [ContentFile],
    next: usize,
    current: Option<(File, u64, &'a Path)>,
}

impl<'a> PieceReader<'a> {
    fn new(files: &'a [ContentFile]) -> Self {
        PieceReader {
            files,
            next: 0,
            current: None,
        }
    }

    fn fill(&mut self, mut buf: &mut [u8]) -> Result<(), TransferError> {
        while !buf.is_empty() {
            let (file, remaining, path) = match &mut self.current {
                Some((file, remaining, path)) if *remaining > 0 => (file, remaining, *path),
                _ => {
                    let f = self.files.get(self.next).ok_or_else(|| {
                        TransferError::Internal("read past the last file".to_owned())
                    })?;
                    self.next += 1;
                    let file = File::open(&f.path).map_err(|source| TransferError::Io {
                        path: f.path.clone(),
                        source,
                    })?;
                    self.current = Some((file, f.length, &f.path));
                    continue;
                }
            };
            let n = buf
                .len()
                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            let (head, tail) = buf.split_at_mut(n);
            file.read_exact(head).map_err(|source| {
                if source.kind() == std::io::ErrorKind::UnexpectedEof {
                    TransferError::ContentChanged {
                        path: path.to_path_buf(),
                    }
                } else {
                    TransferError::Io {
                        path: path.to_path_buf(),
                        source,
                    }
                }
            })?;
            *remaining -= n as u64;
            buf = tail;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_length_grows_with_size_within_bounds() {
        assert_eq!(piece_length_for(1), 256 * 1024);
        assert_eq!(piece_length_for(512 * 1024 * 1024), 256 * 1024);
        assert_eq!(piece_length_for(1024 * 1024 * 1024), 512 * 1024);
        assert_eq!(piece_length_for(1 << 50), 16 * 1024 * 1024);
    }

    #[test]
    fn pieces_match_a_plain_sha1_of_the_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..262_144u32).map(|i| (i % 13) as u8).collect();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/b"), &b).unwrap();
        fs::write(dir.path().join("d/a"), &a).unwrap();
        fs::write(dir.path().join("d/empty"), b"").unwrap();
        let hashed = hash_content(&dir.path().join("d")).unwrap();
        let names: Vec<_> = hashed
            .files
            .iter()
            .map(|f| f.components.join("/"))
            .collect();
        assert_eq!(names, ["a", "b", "empty"]);

        let all: Vec<u8> = a.iter().chain(&b).copied().collect();
        let mut expected = Vec::new();
        for chunk in all.chunks(256 * 1024) {
            expected.extend_from_slice(&Sha1::digest(chunk));
        }
        let meta = crate::metainfo::TorrentMeta::from_info_bytes(&hashed.info).unwrap();
        assert_eq!(meta.piece_count, 3);
        assert!(hashed.info.windows(expected.len()).any(|w| w == expected));
    }

    #[test]
    fn exact_multiple_of_piece_length_has_no_extra_piece() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        fs::write(&path, vec![9u8; 512 * 1024]).unwrap();
        let hashed = hash_content(&path).unwrap();
        let meta = crate::metainfo::TorrentMeta::from_info_bytes(&hashed.info).unwrap();
        assert_eq!(meta.piece_count, 2);
        assert!(meta.single_file);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_and_empty_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("real"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        assert!(matches!(
            hash_content(&d),
            Err(TransferError::InvalidContent { .. })
        ));
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(matches!(
            hash_content(&empty),
            Err(TransferError::InvalidContent { .. })
        ));
    }
}
