//! `kolokol bundle export|import`: records and their data in one file, for a USB stick when the network is gone.
//! Clients of the node's API like every other command; the node reads and writes the files, so paths are made
//! absolute here.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kolokol_node::{BundleExportRequest, BundleExportView, BundleImportRequest, BundleImportView};

use crate::client::Client;
use crate::commands::{absolute, print, short, spinner};

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write publications (records, torrents and the data this node holds complete) to one new file. With no
    /// filter: every publication whose data this node holds complete.
    Export(ExportArgs),
    /// Read a bundle: verify every record signature and every piece hash, store what is good, seed it, and name
    /// what is damaged. A truncated or altered bundle is refused and changes nothing.
    Import {
        /// The bundle file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle file to write (must not exist).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Only publications by this author (repeat for several).
    #[arg(long = "author")]
    pub authors: Vec<String>,
    /// Only publications created since this time: Unix seconds or a date YYYY-MM-DD (UTC).
    #[arg(long, value_parser = kolokol_node::units::parse_since)]
    pub since: Option<u64>,
    /// Only this publication (repeat for several).
    #[arg(long = "id")]
    pub ids: Vec<String>,
}

pub async fn run(client: &Client, command: BundleCommand, json: bool) -> anyhow::Result<()> {
    match command {
        BundleCommand::Export(args) => {
            let request = BundleExportRequest {
                out: absolute(&args.out)?,
                authors: args.authors,
                since: args.since,
                ids: args.ids,
            };
            let spinner = spinner(json, "writing the bundle");
            let result: anyhow::Result<BundleExportView> =
                client.post("/bundle/export", &request).await;
            if let Some(spinner) = spinner {
                spinner.finish_and_clear();
            }
            let view = result?;
            print(json, &view, || export_text(&view))
        }
        BundleCommand::Import { file } => {
            let request = BundleImportRequest {
                path: absolute(&file)?,
            };
            let spinner = spinner(json, "verifying and importing the bundle");
            let result: anyhow::Result<BundleImportView> =
                client.post("/bundle/import", &request).await;
            if let Some(spinner) = spinner {
                spinner.finish_and_clear();
            }
            let view = result?;
            print(json, &view, || import_text(&view))
        }
    }
}

fn export_text(view: &BundleExportView) -> String {
    let mut lines = vec![format!(
        "wrote {} ({} bytes): {} publications, {} with data ({} bytes of files)",
        view.path.display(),
        view.bytes,
        view.publications,
        view.with_data,
        view.data_bytes
    )];
    for id in &view.record_only {
        lines.push(format!(
            "record only  {}  (this node does not hold its data complete)",
            short(id)
        ));
    }
    for damaged in &view.damaged {
        lines.push(format!(
            "damaged on this node  {}  {}",
            short(&damaged.id),
            damaged.path
        ));
    }
    lines.join("\n")
}

fn import_text(view: &BundleImportView) -> String {
    let mut lines = vec![format!(
        "imported {}: {} publications; records {} new, {} known, {} refused; data {} complete, {} partial ({} bytes)",
        view.path.display(),
        view.publications,
        view.new_records,
        view.known_records,
        view.refused_records,
        view.imported_data,
        view.partial_data,
        view.data_bytes
    )];
    for item in &view.items {
        let mut line = format!(
            "{:<7} {}  {}  data: {}",
            item.record,
            short(&item.id),
            item.title.as_deref().unwrap_or("?"),
            item.data
        );
        if let Some(reason) = &item.reason {
            line.push_str(&format!("  ({reason})"));
        }
        lines.push(line);
    }
    for damaged in &view.damaged {
        lines.push(format!(
            "damaged  {}  {}  (not stored; the rest of it downloads from peers)",
            short(&damaged.id),
            damaged.path
        ));
    }
    lines.join("\n")
}
