//! Client commands: ask the node, print the answer (human text, or JSON with `--json`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use kolokol_node::{
    BlockedView, FollowView, IdView, PeerView, PinView, PublishRequest, PublishedView, RecordView,
    ReplicaView, StatusView, TransferView,
};
use serde::Serialize;

use crate::cli::{Command, GetArgs, PeerCommand, PublishArgs};
use crate::client::Client;

/// How often `get` asks the node for progress.
const POLL: Duration = Duration::from_millis(250);

pub async fn run(client: &Client, command: Command, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Up(_) => bail!("`up` runs a node; it is not a client command"),
        Command::Identity(_) => {
            bail!("`identity` works on the data directory; it is not a client command")
        }
        Command::Id => {
            let id: IdView = client.get("/id").await?;
            print(json, &id, || {
                format!("node   {}\nauthor {}", id.node_id, id.author_id)
            })
        }
        Command::Status { id: Some(id) } => {
            let s: ReplicaView = client.get(&format!("/records/{id}/replicas")).await?;
            print(json, &s, || {
                format!(
                    "{}\nfull copies on known peers: {}\nhere: {}\nannounced: {}",
                    s.id,
                    s.full_copies,
                    s.local.as_deref().unwrap_or("no data"),
                    if s.announced {
                        "yes"
                    } else {
                        "not yet (waiting for a replica)"
                    }
                )
            })
        }
        Command::Pin { id } => {
            let pin: PinView = client
                .post("/pin", &serde_json::json!({ "id": id }))
                .await?;
            print(json, &pin, || format!("pinned {}", pin.id))
        }
        Command::Unpin { id } => {
            let pin: PinView = client
                .post("/unpin", &serde_json::json!({ "id": id }))
                .await?;
            print(json, &pin, || format!("unpinned {}", pin.id))
        }
        Command::Status { id: None } => {
            let s: StatusView = client.get("/status").await?;
            print(json, &s, || {
                format!(
                    "node id:   {}\nauthor id: {}\nnetwork:   {}\napi:       {}\nwire:      {}\nbt:        {}\n\
                     dht:       {} ({} nodes){}\ndata dir:  {}\nrecords:   {}\npeers:     {} connected, {} known\n\
                     transfers: {}\nproxy:     {}",
                    s.node_id,
                    s.author_id,
                    s.network,
                    s.api_addr,
                    s.wire_addr,
                    s.bt_addr,
                    s.dht_addr,
                    s.dht_nodes,
                    if s.reachable {
                        ", reachable from outside"
                    } else {
                        ""
                    },
                    s.data_dir.display(),
                    s.records,
                    s.peers_connected,
                    s.peers_known,
                    s.transfers,
                    s.proxy_addr.as_deref().unwrap_or("off")
                )
            })
        }
        Command::Publish(args) => publish(client, args, json).await,
        Command::List(args) => {
            let records: Vec<RecordView> = client
                .get(&format!(
                    "/records?limit={}&offset={}",
                    args.limit, args.offset
                ))
                .await?;
            print(json, &records, || record_lines(&records))
        }
        Command::Search(args) => {
            let request = kolokol_node::SearchRequest {
                q: Some(args.query),
                author: args.author,
                tag: args.tag,
                lang: args.lang,
                since: args.since,
                media: args.media,
                limit: Some(args.limit),
                offset: Some(args.offset),
            };
            let query = search_query_string(&request)?;
            let records: Vec<RecordView> = client.get(&format!("/search?{query}")).await?;
            print(json, &records, || record_lines(&records))
        }
        Command::Show { id } => {
            let r: RecordView = client
                .get(&format!("/records/{}", encode_path(&id)))
                .await?;
            print(json, &r, || show_text(&r))
        }
        Command::Get(args) => get(client, args, json).await,
        Command::Peer(PeerCommand::Add { addr }) => {
            let peer: PeerView = client
                .post("/peers", &serde_json::json!({ "addr": addr }))
                .await?;
            print(json, &peer, || {
                format!(
                    "connected to {} at {}",
                    peer.node_id.as_deref().unwrap_or("?"),
                    peer.addr
                )
            })
        }
        Command::Follow { author } => {
            let f: FollowView = client
                .post("/follow", &serde_json::json!({ "author": author }))
                .await?;
            print(json, &f, || format!("following {}", f.author))
        }
        Command::Unfollow { author } => {
            let v: serde_json::Value = client
                .post("/unfollow", &serde_json::json!({ "author": author }))
                .await?;
            print(json, &v, || format!("no longer following {author}"))
        }
        Command::Block { author } => {
            let b: BlockedView = client
                .post("/block", &serde_json::json!({ "author": author }))
                .await?;
            print(json, &b, || {
                format!(
                    "blocked {}: {} records and {} downloads purged",
                    b.author, b.purged_records, b.purged_data
                )
            })
        }
        Command::Unblock { author } => {
            let v: serde_json::Value = client
                .post("/unblock", &serde_json::json!({ "author": author }))
                .await?;
            print(json, &v, || format!("unblocked {author}"))
        }
        Command::Blocked => {
            let list: Vec<BlockedView> = client.get("/blocked").await?;
            print(json, &list, || {
                list.iter()
                    .map(|b| b.author.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Following => {
            let list: Vec<FollowView> = client.get("/following").await?;
            print(json, &list, || {
                list.iter()
                    .map(|f| format!("{}  {} records", f.author, f.records))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Bridge(command) => crate::proxy_cmd::bridge(client, command, json).await,
        Command::Proxy(command) => crate::proxy_cmd::proxy(client, command, json).await,
        Command::Bundle(command) => crate::bundle_cmd::run(client, command, json).await,
        Command::Torrent(args) => crate::torrent_cmd::write(client, args, json).await,
        Command::Peers => {
            let peers: Vec<PeerView> = client.get("/peers").await?;
            print(json, &peers, || {
                peers
                    .iter()
                    .map(|p| {
                        let state = match (&p.direction, &p.last_error) {
                            (Some(direction), _) => format!("connected ({direction})"),
                            (None, Some(error)) => format!("not connected: {error}"),
                            (None, None) => "not connected".to_owned(),
                        };
                        format!(
                            "{}  {}  {state}",
                            p.addr,
                            p.node_id.as_deref().map_or("?", short)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

async fn publish(client: &Client, args: PublishArgs, json: bool) -> anyhow::Result<()> {
    // The node resolves nothing relative to the CLI's working directory: send absolute paths.
    let paths = args
        .paths
        .iter()
        .map(|p| absolute(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let request = PublishRequest {
        paths,
        title: args.title,
        description: args.description,
        tags: args.tags,
        lang: args.lang,
        keep_metadata: args.keep_metadata,
        allow_metadata: args.allow_metadata,
        keep_names: args.keep_names,
        thumbnail: args.thumbnail.as_deref().map(absolute).transpose()?,
        identity: args.identity,
    };
    let spinner = spinner(json, "hashing and publishing");
    let result: anyhow::Result<PublishedView> = client.post("/publish", &request).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let published = result?;
    if !json {
        for warning in &published.warnings {
            eprintln!("warning: {warning}");
        }
    }
    print(json, &published, || {
        let waiting = if published.announced {
            ""
        } else {
            "\n(announced once a peer holds a full copy, or after the announce time-out; see `kolokol status ID`)"
        };
        format!("published {}\n{}{waiting}", published.id, published.magnet)
    })
}

async fn get(client: &Client, args: GetArgs, json: bool) -> anyhow::Result<()> {
    let out_dir = args.output.as_deref().map(absolute).transpose()?;
    let started: TransferView = if crate::torrent_cmd::is_torrent_file(&args.target) {
        let path = PathBuf::from(args.target.trim());
        crate::torrent_cmd::start_get(client, &path, out_dir.as_deref(), json).await?
    } else {
        client
            .post(
                "/get",
                &serde_json::json!({ "target": args.target, "out_dir": out_dir }),
            )
            .await?
    };
    let deadline = args
        .timeout
        .map(|t| Instant::now() + Duration::from_secs(t));
    let bar = progress_bar(json);
    let mut view = started;
    loop {
        if let Some(bar) = &bar {
            if view.total_bytes > 0 {
                bar.set_length(view.total_bytes);
                bar.set_position(view.have_bytes);
            }
            bar.set_message(match (view.state.as_str(), view.peers) {
                ("resolving", _) => "looking for peers with the torrent's metadata".to_owned(),
                (_, 0) if !view.finished => "waiting for peers".to_owned(),
                (state, peers) => format!("{state}, {peers} peers"),
            });
        }
        if view.finished {
            break;
        }
        if view.state == "failed" {
            bail!(
                "download failed: {}",
                view.error.as_deref().unwrap_or("unknown error")
            );
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!(
                "not complete after {} s ({} of {} bytes); the node keeps downloading",
                args.timeout.unwrap_or(0),
                view.have_bytes,
                view.total_bytes
            );
        }
        tokio::time::sleep(POLL).await;
        view = client.get(&format!("/transfers/{}", view.infohash)).await?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let path = view
        .path
        .clone()
        .context("the node did not say where the data is")?;
    print(json, &view, || format!("{}", path.display()))
}

pub(crate) fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(value)?
    } else {
        human()
    };
    if !text.is_empty() {
        use std::io::Write;
        // A reader that went away (`kolokol list | head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
    Ok(())
}

fn record_lines(records: &[RecordView]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "{}  {}  ({}, by {})",
                r.id,
                r.title,
                human_size(r.size),
                short(&r.author)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The query string of a search request (absent fields left out).
fn search_query_string(request: &kolokol_node::SearchRequest) -> anyhow::Result<String> {
    let value = serde_json::to_value(request)?;
    let mut pairs = Vec::new();
    if let Some(map) = value.as_object() {
        for (key, value) in map {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            pairs.push(format!("{key}={}", encode_path(&text)));
        }
    }
    Ok(pairs.join("&"))
}

fn show_text(r: &RecordView) -> String {
    let mut out = format!(
        "{}\n  id:       {}\n  author:   {}\n  created:  {}\n  size:     {}\n  magnet:   {}",
        r.title,
        r.id,
        r.author,
        r.created,
        human_size(r.size),
        r.magnet
    );
    if !r.tags.is_empty() {
        out.push_str(&format!("\n  tags:     {}", r.tags.join(", ")));
    }
    if let Some(lang) = &r.lang {
        out.push_str(&format!("\n  language: {lang}"));
    }
    if !r.description.is_empty() {
        out.push_str(&format!("\n\n{}\n", r.description));
    }
    out.push_str("\n  files:");
    for f in &r.files {
        out.push_str(&format!(
            "\n    {}  {}  {}",
            f.path,
            human_size(f.size),
            f.mime
        ));
    }
    out
}

pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("{}: cannot make an absolute path", path.display()))
}

pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Record ids are hex; anything else is percent-encoded so it cannot change the request path.
fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn human_size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

fn progress_bar(json: bool) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

pub(crate) fn spinner(json: bool, message: &'static str) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(120));
    Some(spinner)
}
