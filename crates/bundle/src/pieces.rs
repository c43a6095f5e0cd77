//! Streaming v1 piece verification: bytes go in as they are read, each piece's SHA-1 is compared the moment its last
//! byte arrives, and nothing but the running hash is kept. Pieces run across file boundaries (the torrent's data is
//! the files concatenated in order), so whether a file is good is known only once every piece touching it is done.

use kolokol_transfer::metainfo::TorrentLayout;
use sha1::{Digest, Sha1};

/// A file is good when every piece overlapping it verified; a file of length 0 touches no piece and is always good.
pub(crate) struct PieceVerifier<'a> {
    layout: &'a TorrentLayout,
    total: u64,
    /// Bytes of the whole torrent fed so far.
    fed: u64,
    index: usize,
    filled: u64,
    hasher: Sha1,
    /// One entry per piece finished so far: whether its hash matched.
    verified: Vec<bool>,
}

impl<'a> PieceVerifier<'a> {
    pub(crate) fn new(layout: &'a TorrentLayout) -> Self {
        let total = layout.files.iter().map(|f| f.length).sum();
        PieceVerifier {
            layout,
            total,
            fed: 0,
            index: 0,
            filled: 0,
            hasher: Sha1::new(),
            verified: Vec::with_capacity(layout.piece_hashes.len()),
        }
    }

    fn piece_size(&self, index: usize) -> u64 {
        let length = u64::from(self.layout.piece_length);
        let start = index as u64 * length;
        length.min(self.total.saturating_sub(start))
    }

    /// Feed the next bytes of the torrent's data. More than the torrent's total is a caller bug and is ignored.
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.index < self.layout.piece_hashes.len() {
            let want = self.piece_size(self.index) - self.filled;
            if want == 0 {
                // Only a layout with more hashes than data could get here; torrent_layout refuses those.
                break;
            }
            let take = usize::try_from(want).unwrap_or(usize::MAX).min(data.len());
            self.hasher.update(&data[..take]);
            self.filled += take as u64;
            self.fed += take as u64;
            data = &data[take..];
            if self.filled == self.piece_size(self.index) {
                let digest: [u8; 20] = std::mem::take(&mut self.hasher).finalize().into();
                self.verified
                    .push(digest == self.layout.piece_hashes[self.index]);
                self.index += 1;
                self.filled = 0;
            }
        }
    }

    /// Feed `len` zero bytes (a BEP 47 padding file).
    pub(crate) fn update_zeros(&mut self, mut len: u64) {
        const ZEROS: [u8; 4096] = [0; 4096];
        while len > 0 {
            let take = len.min(ZEROS.len() as u64) as usize;
            self.update(&ZEROS[..take]);
            len -= take as u64;
        }
    }

    /// Whether each file (in layout order) is good. Pieces never fed count as failed.
    pub(crate) fn file_results(&self) -> Vec<bool> {
        let piece_length = u64::from(self.layout.piece_length);
        let mut offset = 0u64;
        self.layout
            .files
            .iter()
            .map(|file| {
                let start = offset;
                offset += file.length;
                if file.length == 0 {
                    return true;
                }
                let first = start / piece_length;
                let last = (start + file.length - 1) / piece_length;
                (first..=last).all(|p| {
                    usize::try_from(p)
                        .ok()
                        .and_then(|p| self.verified.get(p))
                        .copied()
                        .unwrap_or(false)
                })
            })
            .collect()
    }

    /// Bytes fed so far.
    #[cfg(test)]
    pub(crate) fn fed(&self) -> u64 {
        self.fed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kolokol_transfer::metainfo::LayoutFile;

    fn layout(data: &[u8], piece_length: u32, lengths: &[u64]) -> TorrentLayout {
        let piece_hashes = data
            .chunks(piece_length as usize)
            .map(|c| Sha1::digest(c).into())
            .collect();
        TorrentLayout {
            infohash: [0; 20],
            name: "t".into(),
            single_file: false,
            piece_length,
            piece_hashes,
            files: lengths
                .iter()
                .enumerate()
                .map(|(i, &length)| LayoutFile {
                    components: vec![format!("f{i}")],
                    length,
                    padding: false,
                })
                .collect(),
        }
    }

    #[test]
    fn good_data_in_any_chunking_verifies_every_file() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let layout = layout(&data, 1024, &[3000, 0, 4000, 3000]);
        for chunk in [1, 7, 1024, 5000, 10_000] {
            let mut v = PieceVerifier::new(&layout);
            for c in data.chunks(chunk) {
                v.update(c);
            }
            assert_eq!(v.fed(), 10_000);
            assert_eq!(v.file_results(), vec![true; 4]);
        }
    }

    #[test]
    fn a_flipped_byte_taints_only_the_files_its_piece_touches() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 251) as u8).collect();
        // Files: [0,3000) [3000,7000) [7000,10000); pieces of 1024.
        let layout = layout(&data, 1024, &[3000, 4000, 3000]);
        let mut bad = data.clone();
        bad[5000] ^= 1; // piece 4 = [4096,5120): inside the middle file only
        let mut v = PieceVerifier::new(&layout);
        v.update(&bad);
        assert_eq!(v.file_results(), vec![true, false, true]);
        let mut bad = data.clone();
        bad[3001] ^= 1; // piece 2 = [2048,3072): spans the first and second files
        let mut v = PieceVerifier::new(&layout);
        v.update(&bad);
        assert_eq!(v.file_results(), vec![false, false, true]);
    }

    #[test]
    fn missing_data_is_not_good() {
        let data = vec![9u8; 4096];
        let layout = layout(&data, 1024, &[2048, 2048]);
        let mut v = PieceVerifier::new(&layout);
        v.update(&data[..3000]);
        assert_eq!(v.file_results(), vec![true, false]);
    }
}
