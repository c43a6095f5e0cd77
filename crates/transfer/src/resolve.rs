//! Magnet links: the task that fetches a torrent's metadata (BEP 9) from its peers, then adds it for download.

use std::sync::Arc;
use std::time::Duration;

use crate::backend;
use crate::engine::{EntryState, Inner, lock, output_folder};
use crate::fastresume::hex;
use crate::metainfo::TorrentMeta;

/// Fetches a magnet's metadata from the torrent's peers, retrying with back-off (and at once when
/// new peers arrive) until it has it, then adds the torrent for download.
pub(crate) async fn resolve_task(inner: Arc<Inner>, infohash: [u8; 20]) {
    // `fetch` holds this lock until the entry is in the table.
    drop(inner.ops.lock().await);
    let mut delay = Duration::from_secs(1);
    loop {
        let changed = inner.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let peers = match lock(&inner.torrents).get(&infohash) {
            Some(entry) => entry.peers.clone(),
            None => return,
        };
        let attempt = if peers.is_empty() {
            Err("no peers known yet".to_owned())
        } else {
            backend::resolve_magnet(&inner.session, &infohash, &peers)
                .await
                .map_err(|e| error_chain(&e))
        };
        match attempt {
            Ok(torrent) => {
                let result = match TorrentMeta::parse(&torrent) {
                    Ok(meta) if meta.infohash == infohash => {
                        add_resolved(&inner, Arc::new(meta)).await
                    }
                    Ok(_) => Err("peer sent metadata of another torrent".to_owned()),
                    Err(e) => Err(format!("torrent metadata is unusable: {}", error_chain(&e))),
                };
                if let Err(message) = result
                    && let Some(entry) = lock(&inner.torrents).get_mut(&infohash)
                {
                    entry.state = EntryState::Failed(message);
                }
                inner.changed.notify_waiters();
                return;
            }
            Err(message) => {
                tracing::debug!(infohash = %hex(&infohash), %message, "metadata not resolved yet");
                if let Some(entry) = lock(&inner.torrents).get_mut(&infohash)
                    && let EntryState::Resolving { last_error, .. } = &mut entry.state
                {
                    *last_error = Some(message);
                }
                tokio::select! {
                    _ = &mut changed => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn add_resolved(inner: &Arc<Inner>, meta: Arc<TorrentMeta>) -> Result<(), String> {
    let _ops = inner.ops.lock().await;
    let (output_dir, peers) = match lock(&inner.torrents).get_mut(&meta.infohash) {
        Some(entry) => {
            entry.meta = Some(meta.clone());
            (entry.output_dir.clone(), entry.peers.clone())
        }
        None => return Ok(()), // removed meanwhile
    };
    let folder = output_folder(&meta, &output_dir);
    inner
        .fastresume
        .prepare_download(&meta, &folder)
        .map_err(|e| format!("fast-resume file: {e}"))?;
    let handle = backend::add(&inner.session, &meta, &folder, &peers)
        .await
        .map_err(|e| error_chain(&e))?;
    if let Some(entry) = lock(&inner.torrents).get_mut(&meta.infohash) {
        entry.state = EntryState::Active(handle);
    }
    Ok(())
}

/// An error and all its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
