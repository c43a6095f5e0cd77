//! Signed test records: a valid record of a given author in one line, with whatever a test needs changed.

use kolokol_core::keys::Keypair;
use kolokol_core::record::{
    FileEntry, InfoHash, RecordBody, RecordError, SignedRecord, sign_record, sign_record_with_work,
};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A record to sign: by default on the network `kolokol`, created now, one 10-byte file `x.bin`, info-hash
/// `[7; 20]`, no description, tags, language or thumbnail.
pub struct TestRecord<'a> {
    key: &'a Keypair,
    body: RecordBody,
}

impl<'a> TestRecord<'a> {
    pub fn new(key: &'a Keypair, title: &str) -> TestRecord<'a> {
        TestRecord {
            key,
            body: RecordBody {
                network: "kolokol".into(),
                author: key.public(),
                created: unix_now(),
                title: title.into(),
                description: String::new(),
                tags: vec![],
                lang: None,
                files: vec![FileEntry {
                    path: "x.bin".into(),
                    size: 10,
                    mime: "application/octet-stream".into(),
                }],
                infohash: InfoHash([7; 20]),
                thumbnail: None,
            },
        }
    }

    pub fn network(mut self, network: &str) -> TestRecord<'a> {
        self.body.network = network.into();
        self
    }

    /// Its creation time, in seconds since the Unix epoch.
    pub fn created(mut self, created: u64) -> TestRecord<'a> {
        self.body.created = created;
        self
    }

    pub fn infohash(mut self, infohash: [u8; 20]) -> TestRecord<'a> {
        self.body.infohash = InfoHash(infohash);
        self
    }

    /// Its only file, of type `application/octet-stream`.
    pub fn file(self, path: &str, size: u64) -> TestRecord<'a> {
        self.typed_file(path, size, "application/octet-stream")
    }

    /// Its only file, with a media type.
    pub fn typed_file(mut self, path: &str, size: u64, mime: &str) -> TestRecord<'a> {
        self.body.files = vec![FileEntry {
            path: path.into(),
            size,
            mime: mime.into(),
        }];
        self
    }

    pub fn description(mut self, description: &str) -> TestRecord<'a> {
        self.body.description = description.into();
        self
    }

    pub fn tags(mut self, tags: &[&str]) -> TestRecord<'a> {
        self.body.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    pub fn lang(mut self, lang: &str) -> TestRecord<'a> {
        self.body.lang = Some(lang.into());
        self
    }

    /// The unsigned body, for a test that changes more.
    pub fn body(self) -> RecordBody {
        self.body
    }

    /// Signed with no proof of work.
    pub fn sign(self) -> Result<SignedRecord, RecordError> {
        sign_record(self.body, self.key)
    }

    /// Signed with `bits` of proof of work (what a node demanding that much accepts).
    pub fn sign_with_work(self, bits: u8) -> Result<SignedRecord, RecordError> {
        sign_record_with_work(self.body, self.key, bits)
    }
}
