//! `kolokol identity ...`: author identities in the data directory.
//!
//! These commands read and write the data directory's key files themselves (see kolokol-node's `Keystore`), so
//! they work with the node stopped; with the node running they also tell it about a new or imported identity
//! (`/api/v1/identities/unlock`), so it can sign with it at once, without a restart. Every write is atomic and
//! never replaces a key (except `lock`, which replaces a key file by the same key sealed).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use kolokol_node::{IdentityName, IdentityView, Keystore, KeystoreError, Passphrase};

use crate::client::{Client, if_running};
use crate::commands::print;

/// The environment variable a passphrase is read from when there is no terminal to ask it on (scripts, tests).
pub const PASSPHRASE_ENV: &str = "KOLOKOL_PASSPHRASE";

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Make a new author identity with a fresh key (the node need not run).
    New {
        /// 1 to 32 characters: lowercase letters, digits, '-' and '_'.
        name: String,
        /// Lock the key with a passphrase (asked on the terminal without echo, or read from KOLOKOL_PASSPHRASE).
        /// `kolokol up` then asks for it at every start.
        #[arg(long)]
        passphrase: bool,
    },
    /// List the identities: name, author id (hidden while locked), which one is the default.
    List,
    /// Copy an identity's key file to FILE as a backup (a locked key stays locked). FILE must not exist.
    Export { name: String, file: PathBuf },
    /// Add the key in FILE (made by `export`) as identity NAME. A locked key's passphrase is asked, to check that
    /// the backup opens. Refused if NAME exists.
    Import { name: String, file: PathBuf },
    /// Lock an identity's key with a (new) passphrase: for an existing key, such as `default`. See SECURITY.md for
    /// what this cannot erase.
    Lock { name: String },
    /// Give the running node the passphrase of a locked identity made or imported while it ran.
    Unlock { name: String },
}

pub async fn run(
    data_dir: &Path,
    api: Option<SocketAddr>,
    command: IdentityCommand,
    json: bool,
) -> anyhow::Result<()> {
    let store = Keystore::new(data_dir);
    let node = match api {
        Some(api) => Some(Client::new(api, data_dir)?),
        None => None,
    };
    match command {
        IdentityCommand::New { name, passphrase } => {
            let name = IdentityName::parse(&name)?;
            if store.path(&name).exists() {
                return Err(KeystoreError::Exists(name.to_string()).into());
            }
            let passphrase = if passphrase {
                Some(ask(&format!("New passphrase for identity {name}: "), true)?)
            } else {
                None
            };
            create_data_dir(data_dir)?;
            let sealed = passphrase.is_some();
            let (key, name, passphrase) = blocking(move || {
                store
                    .create(&name, passphrase.as_ref())
                    .map(|k| (k, name, passphrase))
            })
            .await?;
            let told = tell_node(node.as_ref(), &name, passphrase).await;
            let view = IdentityView {
                name: name.to_string(),
                author_id: Some(key.public().to_string()),
                passphrase: sealed,
                default: name.as_str() == kolokol_node::DEFAULT_IDENTITY,
            };
            print(json, &view, || {
                format!("identity {name}: author {}\n{told}", key.public())
            })
        }
        IdentityCommand::List => {
            let mut views = blocking(move || store.list()).await?;
            // A running node knows the author ids of the locked identities it unlocked.
            if let Some(node) = &node
                && views.iter().any(|v| v.author_id.is_none())
                && let Some(loaded) =
                    if_running(node.get::<Vec<IdentityView>>("/identities").await)?
            {
                for view in views.iter_mut().filter(|v| v.author_id.is_none()) {
                    view.author_id = loaded
                        .iter()
                        .find(|l| l.name == view.name)
                        .and_then(|l| l.author_id.clone());
                }
            }
            print(json, &views, || list_text(&views))
        }
        IdentityCommand::Export { name, file } => {
            let name = IdentityName::parse(&name)?;
            let file = crate::commands::absolute(&file)?;
            let (shown, shown_name) = (file.display().to_string(), name.to_string());
            blocking(move || store.export(&name, &file)).await?;
            print(
                json,
                &serde_json::json!({ "exported": shown_name, "file": shown }),
                || {
                    format!(
                        "identity {shown_name} written to {shown} (mode 0600). Whoever holds this file can sign as \
                         this identity (unless it is locked with a passphrase): keep it offline."
                    )
                },
            )
        }
        IdentityCommand::Import { name, file } => {
            let name = IdentityName::parse(&name)?;
            if store.path(&name).exists() {
                return Err(KeystoreError::Exists(name.to_string()).into());
            }
            create_data_dir(data_dir)?;
            // Ask for a passphrase only if the file is sealed (judged by the import itself, which checks it).
            let first = {
                let (store, name, file) = (store.clone(), name.clone(), file.clone());
                blocking(move || store.import(&name, &file, None)).await
            };
            let (key, passphrase) = match first {
                Ok(key) => (key, None),
                Err(KeystoreError::NeedsPassphrase(_)) => {
                    let passphrase = ask(
                        &format!("Passphrase of the key in {}: ", file.display()),
                        false,
                    )?;
                    let again = passphrase.clone();
                    let (store, name) = (store.clone(), name.clone());
                    let key = blocking(move || store.import(&name, &file, Some(&again))).await?;
                    (key, Some(passphrase))
                }
                Err(other) => return Err(other.into()),
            };
            let sealed = passphrase.is_some();
            let told = tell_node(node.as_ref(), &name, passphrase).await;
            let view = IdentityView {
                name: name.to_string(),
                author_id: Some(key.public().to_string()),
                passphrase: sealed,
                default: name.as_str() == kolokol_node::DEFAULT_IDENTITY,
            };
            print(json, &view, || {
                format!("identity {name} imported: author {}\n{told}", key.public())
            })
        }
        IdentityCommand::Lock { name } => {
            let name = IdentityName::parse(&name)?;
            let current = {
                let (store, name) = (store.clone(), name.clone());
                blocking(move || store.read(&name)).await?
            };
            let current = if current.is_sealed() {
                vec![ask(
                    &format!("Current passphrase of identity {name}: "),
                    false,
                )?]
            } else {
                Vec::new()
            };
            let new = ask(&format!("New passphrase for identity {name}: "), true)?;
            let shown = name.to_string();
            blocking(move || store.lock(&name, &current, &new)).await?;
            print(json, &serde_json::json!({ "locked": shown }), || {
                format!(
                    "identity {shown} is locked with the passphrase; `kolokol up` asks for it at every start. Copies \
                     of the unlocked key made before (backups, old disk blocks) are not erased: see SECURITY.md."
                )
            })
        }
        IdentityCommand::Unlock { name } => {
            let name = IdentityName::parse(&name)?;
            let Some(node) = node else {
                bail!(
                    "no node runs on this data directory: `kolokol up` unlocks identities at start"
                );
            };
            let sealed = {
                let (store, name) = (store.clone(), name.clone());
                blocking(move || store.read(&name)).await?.is_sealed()
            };
            let passphrase = if sealed {
                Some(ask(&format!("Passphrase of identity {name}: "), false)?)
            } else {
                None
            };
            let view: IdentityView = node
                .post("/identities/unlock", &unlock_body(&name, passphrase))
                .await?;
            print(json, &view, || {
                format!(
                    "the node can sign as {}: author {}",
                    view.name,
                    view.author_id.as_deref().unwrap_or("?")
                )
            })
        }
    }
}

fn unlock_body(name: &IdentityName, passphrase: Option<Passphrase>) -> serde_json::Value {
    serde_json::json!({
        "name": name.as_str(),
        "passphrase": passphrase.as_ref().map(Passphrase::expose),
    })
}

/// Tell a running node about identity `name`; the line to print about it.
async fn tell_node(
    node: Option<&Client>,
    name: &IdentityName,
    passphrase: Option<Passphrase>,
) -> String {
    let Some(node) = node else {
        return "no node runs on this data directory: it uses the identity from its next start"
            .into();
    };
    let told: anyhow::Result<IdentityView> = node
        .post("/identities/unlock", &unlock_body(name, passphrase))
        .await;
    match if_running(told) {
        Ok(Some(_)) => "the running node can sign with it now".into(),
        Ok(None) => {
            "no node runs on this data directory: it uses the identity from its next start".into()
        }
        Err(error) => format!(
            "the running node could not take it in ({error:#}): restart it, or run `kolokol identity unlock {name}`"
        ),
    }
}

fn list_text(views: &[IdentityView]) -> String {
    if views.is_empty() {
        return "no identities yet: `kolokol up` makes the default one, `kolokol identity new NAME` others".into();
    }
    views
        .iter()
        .map(|v| {
            let author = v
                .author_id
                .as_deref()
                .unwrap_or("(locked: the author id shows once unlocked)");
            let mut notes = Vec::new();
            if v.default {
                notes.push("default");
            }
            if v.passphrase {
                notes.push("passphrase");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            };
            format!("{:<12} {author}{notes}", v.name)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A passphrase: from KOLOKOL_PASSPHRASE if set, else asked on the terminal without echo (twice if `confirm`).
/// Without either, a clear error at once: never a wait for input that cannot come.
pub fn ask(prompt: &str, confirm: bool) -> anyhow::Result<Passphrase> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(text) => return Ok(Passphrase::new(text)?),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSPHRASE_ENV} is not valid UTF-8"),
        Err(std::env::VarError::NotPresent) => {}
    }
    // Standard input decides (the prompt goes to the terminal itself, so `up 2>log` still asks); without a terminal
    // there, never a read that could wait for ever.
    if !std::io::stdin().is_terminal() {
        bail!(
            "a passphrase is needed and there is no terminal to ask it on: set {PASSPHRASE_ENV} (or run this in a \
             terminal)"
        );
    }
    let first =
        Passphrase::new(rpassword::prompt_password(prompt).context("reading the passphrase")?)?;
    if confirm {
        let second = Passphrase::new(
            rpassword::prompt_password("The same passphrase again: ")
                .context("reading the passphrase")?,
        )?;
        if first.expose() != second.expose() {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(first)
}

fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))
}

/// Key files and Argon2 (a fraction of a second, 64 MiB) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KeystoreError> + Send + 'static,
) -> Result<T, KeystoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(KeystoreError::Io {
            what: "key file task",
            path: String::new(),
            source: std::io::Error::other(error),
        }),
    }
}
