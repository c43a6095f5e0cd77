//! `.torrent` files: `kolokol torrent ID -o FILE` writes a publication's, `kolokol get FILE.torrent` starts a download
//! from one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kolokol_node::{MAX_TORRENT_FILE_BYTES, TransferView};
use serde::Serialize;

use crate::cli::TorrentArgs;
use crate::client::Client;
use crate::commands::print;

/// `get`'s target is a .torrent file: not a magnet link or a publication id, and either named `*.torrent` or an
/// existing file.
pub fn is_torrent_file(target: &str) -> bool {
    let target = target.trim();
    if target.starts_with("magnet:") || is_record_id(target) {
        return false;
    }
    target.to_ascii_lowercase().ends_with(".torrent") || Path::new(target).is_file()
}

fn is_record_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads a .torrent file, refusing one larger than the node takes before reading it.
pub fn read_torrent_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    let cap = MAX_TORRENT_FILE_BYTES as u64;
    if meta.len() > cap {
        bail!(
            "{} has {} bytes: not a .torrent file this node takes (at most {cap} bytes)",
            path.display(),
            meta.len()
        );
    }
    // The file may grow between the check and the read: never read more than the cap (plus one byte to notice).
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > cap {
        bail!("{} grew past {cap} bytes while being read", path.display());
    }
    Ok(bytes)
}

/// Hands a .torrent file to the node (which checks it again: bencode, layout, file names) and starts the download.
pub async fn start_get(
    client: &Client,
    path: &Path,
    out_dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<TransferView> {
    let bytes = read_torrent_file(path)?;
    let route = match out_dir {
        Some(dir) => {
            let dir = dir
                .to_str()
                .with_context(|| format!("{} is not a UTF-8 path", dir.display()))?;
            format!("/get/torrent?out_dir={}", query_encode(dir))
        }
        None => "/get/torrent".to_owned(),
    };
    let view: TransferView = client
        .post_bytes(&route, kolokol_http::TORRENT_CONTENT_TYPE, bytes)
        .await
        .with_context(|| format!("{} was refused", path.display()))?;
    if view.id.is_none() && !json {
        eprintln!(
            "note: no publication in this node's catalog has info-hash {}; downloading the torrent's files as they \
             are, without a signed record vouching for them",
            view.infohash
        );
    }
    Ok(view)
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `kolokol torrent ID -o FILE`.
pub async fn write(client: &Client, args: TorrentArgs, json: bool) -> anyhow::Result<()> {
    let id = args.id.trim();
    if !is_record_id(id) {
        bail!("{id:?} is not a publication id (64 hex characters)");
    }
    let bytes = client.get_bytes(&format!("/records/{id}/torrent")).await?;
    if args.output.as_os_str() == "-" {
        std::io::stdout()
            .lock()
            .write_all(&bytes)
            .context("writing to standard output")?;
        return Ok(());
    }
    write_new_file(&args.output, &bytes)?;
    #[derive(Serialize)]
    struct Written<'a> {
        id: &'a str,
        path: PathBuf,
        bytes: usize,
    }
    let written = Written {
        id,
        path: crate::commands::absolute(&args.output)?,
        bytes: bytes.len(),
    };
    print(json, &written, || format!("{}", written.path.display()))
}

/// Writes a new file readable by its owner only (it names the publication's files); never replaces an existing one,
/// and leaves nothing behind when the write fails.
fn write_new_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        if path.exists() {
            format!("{} exists already: not overwritten", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(error) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrent_targets_are_told_apart_from_ids_and_magnets() {
        assert!(is_torrent_file("x.torrent"));
        assert!(is_torrent_file("/some/where/X.TORRENT"));
        assert!(!is_torrent_file("magnet:?xt=urn:btih:x.torrent"));
        assert!(!is_torrent_file(&"ab".repeat(32)));
        assert!(!is_torrent_file("not-a-file-anywhere"));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_encode("/tmp/a b&c=d/ё"), "/tmp/a%20b%26c%3Dd/%D1%91");
    }
}
