//! The proxy and bridge part of the command line: the flags of `up`, and the `bridge` and `proxy` commands (clients
//! of the node's API like every other command).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kolokol_core::detour::{Host, Rule};
use kolokol_node::{
    BridgeOptions, BridgeView, InvitationInfoView, InvitationView, ProxyOptions, ProxyStatusView,
};

use crate::client::Client;
use crate::commands::print;

/// The proxy's address when `--proxy` is not given.
const DEFAULT_PROXY_ADDR: &str = "127.0.0.1:7412";
/// Longest invitation code read from standard input (the node checks the exact limit).
const MAX_CODE_INPUT: u64 = 4096;
/// Longest block-page signature: they are searched for in the first 8 KiB of answers.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Flags of `kolokol up` for the local proxy and the bridge.
#[derive(Debug, Args)]
pub struct ProxyUpArgs {
    /// Serve the local SOCKS5 and HTTP proxy here (default 127.0.0.1:7412; port 0: any free port). Keep it on
    /// loopback: the proxy asks no password.
    #[arg(long, env = "KOLOKOL_PROXY")]
    pub proxy: Option<SocketAddr>,
    /// Do not run the local proxy.
    #[arg(long, env = "KOLOKOL_NO_PROXY")]
    pub no_proxy: bool,
    /// A routing rule for this run, PATTERN=direct or PATTERN=bridge (a domain covers its subdomains, `*` covers
    /// every site; repeat or separate with commas). Saved rules: `kolokol proxy rule add`.
    #[arg(long = "proxy-rule", env = "KOLOKOL_PROXY_RULE", value_delimiter = ',', value_parser = parse_rule)]
    pub proxy_rules: Vec<Rule>,
    /// An address censoring resolvers hand out for blocked names (repeat or separate with commas): a DNS answer
    /// containing one sends the site through a bridge.
    #[arg(
        long = "proxy-bogus-dns",
        env = "KOLOKOL_PROXY_BOGUS_DNS",
        value_delimiter = ','
    )]
    pub proxy_bogus_dns: Vec<IpAddr>,
    /// A host that the filter's block pages redirect to (repeat or separate with commas): a plain-HTTP redirect
    /// there sends the site through a bridge.
    #[arg(long = "proxy-block-host", env = "KOLOKOL_PROXY_BLOCK_HOST", value_delimiter = ',', value_parser = parse_host)]
    pub proxy_block_hosts: Vec<Host>,
    /// A text that appears in the filter's block pages (repeat for several): a plain-HTTP answer containing it
    /// sends the site through a bridge. HTTP 451 always does.
    #[arg(long = "proxy-block-signature", env = "KOLOKOL_PROXY_BLOCK_SIGNATURE", value_parser = parse_signature)]
    pub proxy_block_signatures: Vec<String>,
    /// Also run a bridge for people you invite (`kolokol bridge invite`), on a machine outside the filter. The node
    /// then lists itself nowhere: no rendezvous or DHT announcements, no LAN announcements, and its kolokol wire
    /// listener only on loopback. It still connects out to kolokol peers, who see its address: use --bridge-only
    /// for a bridge that must not be linked to kolokol at all.
    #[arg(long, env = "KOLOKOL_BRIDGE")]
    pub bridge: bool,
    /// Run only a bridge: no catalog exchange, no kolokol wire listener, no DHT, no LAN, no local proxy unless
    /// --proxy is given. `kolokol bridge invite` and the other commands work as with --bridge.
    #[arg(long, env = "KOLOKOL_BRIDGE_ONLY")]
    pub bridge_only: bool,
    /// The bridge's listen address (default: all interfaces; with no port or port 0, a port chosen on the first
    /// start and kept, since invitations carry it).
    #[arg(long, env = "KOLOKOL_BRIDGE_LISTEN")]
    pub bridge_listen: Option<SocketAddr>,
    /// DANGEROUS, for tests on one machine: let invited clients reach this machine's loopback and private
    /// networks (its router, LAN and local services) through the bridge.
    #[arg(long, env = "KOLOKOL_BRIDGE_ALLOW_PRIVATE")]
    pub bridge_allow_private: bool,
}

impl ProxyUpArgs {
    /// The node's proxy options from the flags.
    pub fn options(&self) -> anyhow::Result<ProxyOptions> {
        let bridge = self.bridge || self.bridge_only;
        if !bridge && (self.bridge_listen.is_some() || self.bridge_allow_private) {
            bail!("--bridge-listen and --bridge-allow-private need --bridge or --bridge-only");
        }
        let (listen, skip_if_busy) = match (self.no_proxy, self.proxy) {
            (true, _) => (None, false),
            (false, Some(addr)) => (Some(addr), false),
            // A bridge-only node runs the local proxy only when asked by name.
            (false, None) if self.bridge_only => (None, false),
            (false, None) => (
                Some(
                    DEFAULT_PROXY_ADDR
                        .parse()
                        .context("the default proxy address")?,
                ),
                true,
            ),
        };
        Ok(ProxyOptions {
            listen,
            skip_if_busy,
            rules: self.proxy_rules.clone(),
            bogus_dns: self.proxy_bogus_dns.clone(),
            block_hosts: self.proxy_block_hosts.clone(),
            block_signatures: self.proxy_block_signatures.clone(),
            bridge: bridge.then_some(BridgeOptions {
                listen: self.bridge_listen,
                allow_private_targets: self.bridge_allow_private,
                only: self.bridge_only,
            }),
        })
    }
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    Rule::parse(text).map_err(|e| e.to_string())
}

fn parse_host(text: &str) -> Result<Host, String> {
    Host::parse(text.trim()).map_err(|e| e.to_string())
}

/// A block-page signature: some text, short enough to look for in the first kilobytes of every plain-HTTP answer.
fn parse_signature(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("a block-page signature must not be empty".into());
    }
    if text.len() > MAX_SIGNATURE_BYTES {
        return Err(format!(
            "a block-page signature is at most {MAX_SIGNATURE_BYTES} bytes"
        ));
    }
    Ok(text.to_owned())
}

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// On a bridge (`up --bridge`): make an invitation for one person and print its code and QR code.
    Invite {
        /// The address clients will dial: this machine's public IP address or DNS name (default: the bridge's
        /// listen address, when that is a specific one).
        #[arg(long)]
        host: Option<String>,
        /// The port clients will dial (default: the bridge's port; set it when a router forwards another one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// On a bridge: list the invitations it accepts.
    Invitations,
    /// On a bridge: stop accepting an invitation (by id).
    Revoke {
        /// Invitation id (8 hex digits).
        id: String,
    },
    /// Use a bridge: add the invitation code someone gave you. `-` reads the code from standard input (keeps it
    /// out of the shell history).
    Add {
        /// kolokol-bridge:… (spaces and line breaks in it are ignored)
        #[arg(required = true, num_args = 1..)]
        code: Vec<String>,
    },
    /// List the bridges this node uses, with their health.
    List,
    /// Stop using a bridge (by id).
    Remove {
        /// Invitation id (8 hex digits), as `bridge list` shows.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Show which sites went direct and which through a bridge, and the bridges' health.
    Status,
    /// Manage saved routing rules.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Forget what the proxy learnt about a site, so it is tried direct again.
    Forget {
        /// The site's host name or IP address.
        host: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Save a rule PATTERN=direct or PATTERN=bridge (replaces a saved rule for the same pattern).
    Add {
        /// e.g. example.org=bridge (covers its subdomains) or *=direct
        rule: String,
    },
    /// Remove the saved rule for a pattern.
    Remove {
        /// e.g. example.org
        pattern: String,
    },
}

pub async fn bridge(client: &Client, command: BridgeCommand, json: bool) -> anyhow::Result<()> {
    match command {
        BridgeCommand::Invite { host, port } => {
            let invitation: InvitationView = client
                .post(
                    "/bridge/invitations",
                    &serde_json::json!({ "host": host, "port": port }),
                )
                .await?;
            print(json, &invitation, || invitation_text(&invitation))
        }
        BridgeCommand::Invitations => {
            let list: Vec<InvitationInfoView> = client.get("/bridge/invitations").await?;
            print(json, &list, || {
                if list.is_empty() {
                    return "no invitations (make one with `kolokol bridge invite`)".to_owned();
                }
                list.iter()
                    .map(|i| format!("{}  {}  made {}", i.id, i.address, i.created))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        BridgeCommand::Revoke { id } => {
            let answer: serde_json::Value = client
                .post("/bridge/revoke", &serde_json::json!({ "id": id }))
                .await?;
            print(json, &answer, || {
                format!("invitation {id} revoked: new tunnels with it get no answer")
            })
        }
        BridgeCommand::Add { code } => {
            let code = if code.len() == 1 && code[0] == "-" {
                read_code_from_stdin()?
            } else {
                code.concat()
            };
            let bridge: BridgeView = client
                .post("/bridges", &serde_json::json!({ "code": code }))
                .await?;
            print(json, &bridge, || {
                format!(
                    "bridge {} at {} added; sites that need it will go through it",
                    bridge.id, bridge.address
                )
            })
        }
        BridgeCommand::List => {
            let list: Vec<BridgeView> = client.get("/bridges").await?;
            print(json, &list, || {
                if list.is_empty() {
                    return "no bridges (add one with `kolokol bridge add CODE`)".to_owned();
                }
                list.iter().map(bridge_line).collect::<Vec<_>>().join("\n")
            })
        }
        BridgeCommand::Remove { id } => {
            let answer: serde_json::Value = client
                .post("/bridges/remove", &serde_json::json!({ "id": id }))
                .await?;
            print(json, &answer, || format!("bridge {id} removed"))
        }
    }
}

pub async fn proxy(client: &Client, command: ProxyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        ProxyCommand::Status => {
            let status: ProxyStatusView = client.get("/proxy").await?;
            print(json, &status, || status_text(&status))
        }
        ProxyCommand::Rule(RuleCommand::Add { rule }) => {
            let answer: serde_json::Value = client
                .post("/proxy/rules", &serde_json::json!({ "rule": rule }))
                .await?;
            print(json, &answer, || rules_text(&answer))
        }
        ProxyCommand::Rule(RuleCommand::Remove { pattern }) => {
            let answer: serde_json::Value = client
                .post(
                    "/proxy/rules/remove",
                    &serde_json::json!({ "pattern": pattern }),
                )
                .await?;
            print(json, &answer, || rules_text(&answer))
        }
        ProxyCommand::Forget { host } => {
            let answer: serde_json::Value = client
                .post("/proxy/forget", &serde_json::json!({ "host": host }))
                .await?;
            print(json, &answer, || {
                if answer["forgotten"].as_bool() == Some(true) {
                    format!("forgot what was learnt about {host}")
                } else {
                    format!("nothing was known about {host}")
                }
            })
        }
    }
}

fn read_code_from_stdin() -> anyhow::Result<String> {
    let mut code = String::new();
    std::io::stdin()
        .take(MAX_CODE_INPUT)
        .read_to_string(&mut code)
        .context("reading the invitation code from standard input")?;
    if code.trim().is_empty() {
        bail!("no invitation code on standard input");
    }
    Ok(code)
}

fn invitation_text(i: &InvitationView) -> String {
    format!(
        "Invitation {id} to the bridge at {address}\n\n{qr}\n{code}\n\n\
         Give the code (or the QR code) to one person, over a channel you trust: whoever holds it can use this \
         bridge and can tell that it is one.\nThey run: kolokol bridge add <code>\n\
         To revoke it: kolokol bridge revoke {id}",
        id = i.id,
        address = i.address,
        qr = i.qr,
        code = i.code,
    )
}

fn bridge_line(b: &BridgeView) -> String {
    let health = if b.connected && !b.down {
        match b.rtt_ms {
            Some(rtt) => format!("up, {rtt} ms"),
            None => "up".to_owned(),
        }
    } else if b.down {
        format!("down ({})", b.last_error.as_deref().unwrap_or("no answer"))
    } else {
        "not connected".to_owned()
    };
    format!(
        "{}  {}  {health}  {} streams ({} open)",
        b.id, b.address, b.streams_total, b.streams_open
    )
}

fn status_text(s: &ProxyStatusView) -> String {
    let mut out = match &s.proxy_addr {
        Some(addr) => format!(
            "proxy: {addr} (SOCKS5 and HTTP), {} connections open",
            s.connections_open
        ),
        None => "proxy: off".to_owned(),
    };
    if !s.rules.is_empty() {
        out.push_str(&format!("\nrules: {}", s.rules.join(", ")));
    }
    out.push_str("\nsites:");
    if s.sites.is_empty() {
        out.push_str(" none yet");
    }
    for site in &s.sites {
        let why = match (site.reason.as_str(), site.bridge_secs_left) {
            ("remembered", Some(secs)) => format!("temporary, {} min left", secs.div_ceil(60)),
            ("remembered-permanently", _) => "permanent".to_owned(),
            (reason, _) => reason.to_owned(),
        };
        let failure = site
            .last_failure
            .as_deref()
            .map(|f| format!(", last failure: {f}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n  {:<30} {:<6} {why}{failure}  (direct {}, via bridge {})",
            site.host, site.route, site.direct_ok, site.via_bridge
        ));
    }
    out.push_str("\nbridges:");
    if s.bridges.is_empty() {
        out.push_str(" none (add one with `kolokol bridge add CODE`)");
    }
    for bridge in &s.bridges {
        out.push_str(&format!("\n  {}", bridge_line(bridge)));
    }
    if let Some(server) = &s.bridge_server {
        out.push_str(&format!(
            "\nthis node's bridge: {}, {} invitations, {} tunnels open, {} streams, {} probes silenced",
            server.listen_addr,
            server.invitations,
            server.tunnels_open,
            server.streams_total,
            server.silenced_total
        ));
    }
    out
}

fn rules_text(answer: &serde_json::Value) -> String {
    let rules: Vec<&str> = answer["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if rules.is_empty() {
        "no rules".to_owned()
    } else {
        format!("rules: {}", rules.join(", "))
    }
}

/// The proxy and bridge lines `up` prints when the node is ready.
pub fn ready_lines(status: &ProxyStatusView) -> String {
    let mut out = format!(
        "  proxy:   {}\n",
        status.proxy_addr.as_deref().unwrap_or("off")
    );
    if let Some(server) = &status.bridge_server {
        out.push_str(&format!(
            "  bridge:  {} ({} invitations)\n",
            server.listen_addr, server.invitations
        ));
    }
    out
}
