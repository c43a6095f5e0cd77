//! What a connection does with each thing its exchange reports (`ExchangeAction`): store what arrives, answer
//! reconciliation, pass replication messages on, and report to the record policy (`crate::record_policy`), whose
//! decisions (what to relay and to whom, what to serve, what to fetch, whom to cut off) `crate::relaying` turns into
//! messages. One named handler per action.

use std::net::SocketAddr;
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::{InEvent, Misbehaviour, OutEvent, Verdict};
use kolokol_core::record::RecordId;
use kolokol_wire::{ExchangeAction, Message, pack_records};
use tokio::io::AsyncWrite;

use super::ConnectionError;
use super::conduct::Misconduct;
use super::connection::Link;

impl<W: AsyncWrite + Unpin> Link<W> {
    /// Carry out one action of the exchange.
    pub async fn act(&mut self, action: ExchangeAction) -> Result<(), ConnectionError> {
        match action {
            ExchangeAction::Send(message) => self.send(&message).await,
            ExchangeAction::Received(records) => self.on_records_received(records).await,
            ExchangeAction::ServeFetch(ids) => self.serve_fetch(ids).await,
            ExchangeAction::Announced(ids) => self.on_announced(ids).await,
            ExchangeAction::ServeAuthor(author) => self.serve_author(author).await,
            ExchangeAction::Reconcile { session, frame } => {
                self.on_reconcile(session, &frame).await
            }
            ExchangeAction::Replicate(record) => self.on_replicate(record).await,
            ExchangeAction::Declined(infohash) => {
                crate::replication::on_declined(
                    &self.peering.replicator,
                    &self.remote_id,
                    infohash,
                );
                Ok(())
            }
            ExchangeAction::Holding(infohashes) => {
                crate::proving::on_holding(&self.peering.replicator, &self.remote_id, infohashes)
                    .await;
                Ok(())
            }
            ExchangeAction::Challenged(challenge) => {
                let answer = crate::proving::answer(&self.peering.replicator, challenge).await;
                self.send(&answer).await
            }
            ExchangeAction::Proved { id, digest } => {
                crate::proving::on_proof(&self.peering.replicator, &self.remote_id, id, digest);
                Ok(())
            }
            ExchangeAction::Opened => self.on_opened().await,
        }
    }

    /// Records arrived: store what is valid and admitted; the policy decides what to relay, remembers what was
    /// refused and counts what is invalid.
    async fn on_records_received(&mut self, records: Vec<Vec<u8>>) -> Result<(), ConnectionError> {
        let from = self.remote_id;
        let arrivals = super::incoming::store_incoming(&self.peering, &from, records).await;
        let events = arrivals.into_iter().map(|arrival| InEvent::Received {
            from,
            id: arrival.id,
            age: arrival.age,
            verdict: arrival.verdict,
        });
        let decisions = crate::relaying::feed(&self.peering.relayer, events);
        self.carry_out(decisions).await
    }

    /// The peer asked for records by id: the policy answers (never a held-back record).
    async fn serve_fetch(&mut self, ids: Vec<RecordId>) -> Result<(), ConnectionError> {
        let from = self.remote_id;
        let decisions =
            crate::relaying::feed(&self.peering.relayer, [InEvent::Requested { from, ids }]);
        self.carry_out(decisions).await
    }

    /// The peer announced records by id (`have`): the policy fetches those the store lacks.
    async fn on_announced(&mut self, ids: Vec<RecordId>) -> Result<(), ConnectionError> {
        let missing = self
            .peering
            .catalog
            .run(move |c| c.missing_ids(&ids))
            .await?;
        let from = self.remote_id;
        let events = missing
            .into_iter()
            .map(|id| InEvent::Announced { from, id });
        let decisions = crate::relaying::feed(&self.peering.relayer, events);
        self.carry_out(decisions).await
    }

    async fn serve_author(
        &mut self,
        author: kolokol_core::keys::AuthorId,
    ) -> Result<(), ConnectionError> {
        let found = self
            .peering
            .catalog
            .run(move |c| {
                c.author_record_bytes(&author, kolokol_wire::message::MAX_AUTHOR_RECORDS as u32)
            })
            .await?;
        // Held-back publications are not served.
        let found = self
            .peering
            .policy
            .without_held_back(found, |bytes| RecordId::of_signed_bytes(bytes));
        self.send_records(found).await
    }

    async fn on_reconcile(&mut self, session: u64, frame: &[u8]) -> Result<(), ConnectionError> {
        // A peer that breaks the reconciliation protocol is disconnected, like any violation.
        let outcome = match self
            .sessions
            .handle(&self.peering.catalog, &self.peering.policy, session, frame)
            .await
        {
            Ok(outcome) => outcome,
            Err(error @ crate::reconciling::SessionError::Protocol(_)) => {
                return Err(self.misbehaved(Misconduct::Reconciliation(error)));
            }
            Err(error) => return Err(error.into()),
        };
        if let Some((session, frame)) = outcome.reply {
            self.send(&Message::Reconcile { session, frame }).await?;
        }
        // A hostile peer can make reconciliation name records we hold: only what we lack is needed.
        let need = outcome.need;
        let need = self
            .peering
            .catalog
            .run(move |c| c.missing_ids(&need))
            .await?;
        let peer = self.remote_id;
        let mut events = vec![InEvent::Reconciled {
            peer,
            have: outcome.have,
            need,
        }];
        if outcome.ours_ended {
            events.push(InEvent::ReconcileEnded { peer });
        }
        let decisions = crate::relaying::feed(&self.peering.relayer, events);
        self.carry_out(decisions).await
    }

    async fn on_replicate(&mut self, record: Vec<u8>) -> Result<(), ConnectionError> {
        let id = RecordId::of_signed_bytes(&record);
        if crate::replication::on_replicate(&self.peering.replicator, &self.remote_id, record).await
        {
            return Ok(());
        }
        // An invalid record counts against the peer like one pushed.
        let event = InEvent::Received {
            from: self.remote_id,
            id,
            age: Duration::ZERO,
            verdict: Verdict::Invalid,
        };
        let decisions = crate::relaying::feed(&self.peering.relayer, [event]);
        self.carry_out(decisions).await
    }

    async fn on_opened(&mut self) -> Result<(), ConnectionError> {
        tracing::info!(peer = %self.remote_id, "connection open");
        // Its holding claims are challenged, and counted per address prefix, from now on.
        if let Ok(addr) = self.addr.parse::<SocketAddr>() {
            self.peering
                .replicator
                .replication
                .peer_connected(self.remote_id, addr.ip());
        }
        for message in crate::replication::holding_messages(&self.peering.replicator).await {
            self.send(&message).await?;
        }
        for message in std::mem::take(&mut self.deferred) {
            self.send(&message).await?;
        }
        Ok(())
    }

    /// Start a reconciliation session (the record policy asked for one with this peer).
    pub async fn start_reconcile(&mut self) -> Result<(), ConnectionError> {
        match self
            .sessions
            .start(&self.peering.catalog, &self.peering.policy)
            .await
        {
            Ok((session, frame)) => self.send(&Message::Reconcile { session, frame }).await,
            Err(error) => {
                tracing::warn!(%error, "cannot start a reconciliation");
                let peer = self.remote_id;
                let decisions = crate::relaying::feed(
                    &self.peering.relayer,
                    [InEvent::ReconcileEnded { peer }],
                );
                self.carry_out(decisions).await
            }
        }
    }

    /// Carry out the record policy's decisions: this connection's part here, in order; the rest through the other
    /// peers' outboxes.
    async fn carry_out(&mut self, decisions: Vec<OutEvent<NodeId>>) -> Result<(), ConnectionError> {
        if decisions.is_empty() {
            return Ok(());
        }
        let own =
            crate::relaying::carry_out(&self.peering.relayer, Some(&self.remote_id), decisions)
                .await;
        for message in &own.messages {
            self.send(message).await?;
        }
        match own.disconnect {
            Some(Misbehaviour::InvalidRecords(count)) => {
                Err(self.misbehaved(Misconduct::InvalidRecords(count)))
            }
            None => Ok(()),
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
        self.peering.peers.set_bt_addr(&self.remote_id, bt_addr);
        crate::fetch::offer_peer_to_downloads(&self.peering.fetcher, bt_addr).await;
    }

    async fn send_records(&mut self, records: Vec<Vec<u8>>) -> Result<(), ConnectionError> {
        for message in pack_records(records, self.peering.wire_config.max_message_bytes)? {
            self.send(&message).await?;
        }
        Ok(())
    }
}
