//! What a connection does with each thing its exchange reports (`ExchangeAction`): serve records, store and relay
//! what arrives, answer reconciliation, pass replication messages on. One named handler per action, so that a
//! change of policy (what to relay, what to push) touches one function.

use std::net::SocketAddr;

use kolokol_core::record::RecordId;
use kolokol_wire::{ExchangeAction, Message, pack_records};
use tokio::io::AsyncWrite;

use super::connection::Link;
use super::{ConnectionError, RELAY_MAX_AGE_SECS};
use crate::clock::unix_now;

impl<W: AsyncWrite + Unpin> Link<W> {
    /// Carry out one action of the exchange.
    pub async fn act(&mut self, action: ExchangeAction) -> Result<(), ConnectionError> {
        match action {
            ExchangeAction::Send(message) => self.send(&message).await,
            ExchangeAction::SendRecords(ids) => self.send_requested_records(ids).await,
            ExchangeAction::Received(records) => self.on_records_received(records).await,
            ExchangeAction::ServeFetch(ids) => self.serve_fetch(ids).await,
            ExchangeAction::ServeAuthor(author) => self.serve_author(author).await,
            ExchangeAction::Reconcile { session, frame } => {
                self.on_reconcile(session, &frame).await
            }
            ExchangeAction::Replicate(record) => self.on_replicate(record).await,
            ExchangeAction::Declined(infohash) => {
                crate::replication::on_declined(&self.inner, &self.remote_id, infohash);
                Ok(())
            }
            ExchangeAction::Holding(infohashes) => {
                crate::replication::on_holding(&self.inner, &self.remote_id, infohashes);
                Ok(())
            }
            ExchangeAction::Done => self.on_exchange_done().await,
        }
    }

    /// The peer asked for records by id (a full-inventory exchange): send those held, name those not.
    async fn send_requested_records(&mut self, ids: Vec<RecordId>) -> Result<(), ConnectionError> {
        let found = self.record_bytes(ids.clone()).await?;
        let found_ids: std::collections::BTreeSet<_> =
            found.iter().map(|b| RecordId::of_signed_bytes(b)).collect();
        let missing: Vec<_> = ids
            .into_iter()
            .filter(|id| !found_ids.contains(id))
            .collect();
        let messages = pack_records(found, self.inner.wire_config.max_message_bytes)?;
        for message in messages
            .iter()
            .chain(&kolokol_wire::missing_messages(&missing))
        {
            self.send(message).await?;
        }
        Ok(())
    }

    /// Records arrived: store what is valid and admitted, relay what is news, count what is invalid.
    async fn on_records_received(&mut self, records: Vec<Vec<u8>>) -> Result<(), ConnectionError> {
        let (stored, refused) =
            super::incoming::store_incoming(&self.inner, &self.remote_id, records).await;
        // Only news is relayed: a node catching up on an old catalog must not flood its peers.
        let now = unix_now();
        let new: Vec<Vec<u8>> = stored
            .into_iter()
            .filter(|r| r.body().created + RELAY_MAX_AGE_SECS >= now)
            .map(|r| r.bytes().to_vec())
            .collect();
        self.inner
            .peers
            .relay(&new, &self.remote_id, self.inner.push_fanout);
        self.invalid_records(refused)
    }

    async fn serve_fetch(&mut self, ids: Vec<RecordId>) -> Result<(), ConnectionError> {
        let ids = self.inner.replication.without_held_back(ids);
        let found = self.record_bytes(ids).await?;
        self.send_records(found).await
    }

    async fn serve_author(
        &mut self,
        author: kolokol_core::keys::AuthorId,
    ) -> Result<(), ConnectionError> {
        let found = self
            .inner
            .catalog
            .run(move |c| {
                c.author_record_bytes(&author, kolokol_wire::message::MAX_AUTHOR_RECORDS as u32)
            })
            .await?;
        let found = self.inner.replication.filter_bytes(found);
        self.send_records(found).await
    }

    async fn on_reconcile(&mut self, session: u64, frame: &[u8]) -> Result<(), ConnectionError> {
        // A peer that breaks the reconciliation protocol is disconnected, like any violation.
        let outcome = match self.sessions.handle(&self.inner, session, frame).await {
            Ok(outcome) => outcome,
            Err(error @ crate::reconciling::SessionError::Protocol(_)) => {
                return Err(self.misbehaved(error.to_string()));
            }
            Err(error) => return Err(error.into()),
        };
        if let Some((session, frame)) = outcome.reply {
            self.send(&Message::Reconcile { session, frame }).await?;
        }
        let have = self.inner.replication.without_held_back(outcome.have);
        if !have.is_empty() {
            let found = self.record_bytes(have).await?;
            self.send_records(found).await?;
        }
        // A hostile peer can make reconciliation name records we hold: fetch only what we lack.
        let need: Vec<_> = outcome
            .need
            .into_iter()
            .filter(|id| !self.inner.admission.was_refused(id))
            .collect();
        let need = self
            .inner
            .catalog
            .run(move |c| c.missing_ids(&need))
            .await?;
        for ids in need.chunks(kolokol_wire::message::MAX_FETCH_IDS) {
            self.send(&Message::Fetch { ids: ids.to_vec() }).await?;
        }
        Ok(())
    }

    async fn on_replicate(&mut self, record: Vec<u8>) -> Result<(), ConnectionError> {
        if crate::replication::on_replicate(&self.inner, &self.remote_id, record).await {
            Ok(())
        } else {
            self.invalid_records(1)
        }
    }

    async fn on_exchange_done(&mut self) -> Result<(), ConnectionError> {
        tracing::info!(peer = %self.remote_id, "catalog exchange complete");
        for message in crate::replication::holding_messages(&self.inner).await {
            self.send(&message).await?;
        }
        if self.outbound {
            self.start_reconcile().await?;
        }
        for message in std::mem::take(&mut self.deferred) {
            self.send(&message).await?;
        }
        Ok(())
    }

    /// Start a reconciliation session (we dialled, or the timer picked this peer).
    pub async fn start_reconcile(&mut self) -> Result<(), ConnectionError> {
        match self.sessions.start(&self.inner).await {
            Ok((session, frame)) => self.send(&Message::Reconcile { session, frame }).await,
            Err(error) => {
                tracing::warn!(%error, "cannot start a reconciliation");
                Ok(())
            }
        }
    }

    /// The peer's hello named its BitTorrent port: downloads in progress may find data there.
    pub async fn note_hello(&mut self, bt_port: u16) {
        if bt_port == 0 {
            return;
        }
        let Ok(addr) = self.addr.parse::<SocketAddr>() else {
            return;
        };
        let bt_addr = SocketAddr::new(addr.ip(), bt_port);
        self.inner.peers.set_bt_addr(&self.remote_id, bt_addr);
        crate::fetch::offer_peer_to_downloads(&self.inner, bt_addr).await;
    }

    /// The stored bytes of the records named (those held), read on the catalog thread.
    async fn record_bytes(&mut self, ids: Vec<RecordId>) -> Result<Vec<Vec<u8>>, ConnectionError> {
        Ok(self
            .inner
            .catalog
            .run(move |c| c.record_bytes(&ids))
            .await?)
    }

    async fn send_records(&mut self, records: Vec<Vec<u8>>) -> Result<(), ConnectionError> {
        for message in pack_records(records, self.inner.wire_config.max_message_bytes)? {
            self.send(&message).await?;
        }
        Ok(())
    }
}
