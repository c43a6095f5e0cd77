//! Author identities at rest and in use (issue 12, part 6): `identity new/list/export/import/lock/unlock`,
//! `publish --as NAME`, and author keys locked with a passphrase that `up` asks for. Real `kolokol` processes on
//! real data directories.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{BIN, NodeCommand, NodeProcess, TestNode, random_file};

/// The CLI on a data directory with no node running (no `--api`; nothing in the environment).
fn offline(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KOLOKOL_API")
        .env_remove("KOLOKOL_PASSPHRASE")
        .stdin(Stdio::null());
    command
}

fn ok_json(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded but should not: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` with its bytes, for "nothing changed" checks (the catalog's WAL files excluded: a
/// running node writes them on its own).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("catalog.sqlite")
            || ["engine", "dht.state", "lock"].contains(&name.as_str())
        {
            continue;
        }
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn publish_as(node: &NodeProcess, file: &Path, title: &str, identity: &str) -> Output {
    node.cli(&[
        "--json",
        "publish",
        file.to_str().unwrap(),
        "--title",
        title,
        "--as",
        identity,
    ])
}

fn record_author(node: &NodeProcess, id: &str) -> String {
    node.json(&["show", id])["author"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn record_count(node: &NodeProcess) -> usize {
    node.json(&["list"]).as_array().unwrap().len()
}

#[test]
fn publish_as_signs_with_that_identity_and_an_unknown_one_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("n"));
    let default_author = node.json(&["status"])["author_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Made with the node running: it signs with the new identity at once, no restart.
    let made = node.json(&["identity", "new", "work"]);
    let work = made["author_id"].as_str().unwrap().to_owned();
    assert_ne!(work, default_author);
    let key_file = node.data_dir.join("identities/work.key");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&node.data_dir.join("author.key")), 0o600);

    let list = node.json(&["identity", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[0]["default"], true);
    assert_eq!(list[0]["author_id"], default_author.as_str());
    assert_eq!(list[1]["name"], "work");
    assert_eq!(list[1]["default"], false);
    assert_eq!(list[1]["author_id"], work.as_str());
    let text = node.cli(&["identity", "list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("work") && text.contains(&work), "{text}");

    let file = tmp.path().join("video.bin");
    random_file(&file, 50_000, 1);
    let published = ok_json(publish_as(&node, &file, "sensitive", "work"));
    let id = published["id"].as_str().unwrap();
    assert_eq!(record_author(&node, id), work);
    let plain = node.json(&["publish", file.to_str().unwrap(), "--title", "ordinary"]);
    assert_eq!(
        record_author(&node, plain["id"].as_str().unwrap()),
        default_author
    );

    // Own identities are own everywhere: not followed, not blocked.
    let out = node.cli(&["follow", &work]);
    assert!(failed(&out).contains("own author id"));
    let out = node.cli(&["block", &work]);
    assert!(failed(&out).contains("own author id"));

    // Unknown and malformed names: refused before anything is copied or signed.
    let records = record_count(&node);
    let before = snapshot(&node.data_dir);
    let other = tmp.path().join("other.bin");
    random_file(&other, 50_000, 2);
    let out = publish_as(&node, &other, "never", "nosuch");
    let message = failed(&out);
    assert!(message.contains("no identity named nosuch"), "{message}");
    for bad in ["Work", "../author", "a b", ""] {
        let message = failed(&publish_as(&node, &other, "never", bad));
        assert!(
            message.contains("not an identity name"),
            "{bad:?}: {message}"
        );
    }
    assert_eq!(record_count(&node), records);
    assert_eq!(
        snapshot(&node.data_dir),
        before,
        "a refused publish changed files"
    );

    // Bad and taken names for a new identity: refused, nothing written.
    for bad in ["Work", "-x", "a/b", &"x".repeat(33)] {
        let message = failed(&node.cli(&["identity", "new", "--", bad]));
        assert!(
            message.contains("not an identity name"),
            "{bad:?}: {message}"
        );
    }
    let message = failed(&node.cli(&["identity", "new", "work"]));
    assert!(message.contains("exists already"), "{message}");
    let message = failed(&node.cli(&["identity", "new", "default"]));
    assert!(message.contains("exists already"), "{message}");
    assert_eq!(snapshot(&node.data_dir), before);
}

#[test]
fn an_earlier_data_directory_keeps_its_author_key_as_the_default_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    std::fs::create_dir_all(&dir).unwrap();
    // An author.key as every earlier version wrote it: 64 hex characters.
    let secret = [0x42u8; 32];
    std::fs::write(dir.join("author.key"), hex::encode(secret)).unwrap();
    let expected = kolokol_core::keys::Keypair::from_secret_bytes(secret)
        .public()
        .to_string();
    let node = NodeProcess::start(&dir);
    assert_eq!(node.json(&["status"])["author_id"], expected.as_str());
    let list = node.json(&["identity", "list"]);
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[0]["author_id"], expected.as_str());
    assert_eq!(
        std::fs::read_to_string(dir.join("author.key")).unwrap(),
        hex::encode(secret),
        "the file is left as it was"
    );
}

/// `up` with the loopback test settings, a passphrase in the environment if given.
fn up(dir: &Path, passphrase: Option<&str>) -> Result<NodeProcess, Output> {
    let mut command = NodeCommand::new(BIN, dir)
        .args(&["--listen", "127.0.0.1:0", "--wire", "127.0.0.1:0"])
        .args(&["--dht", "127.0.0.1:0", "--proxy", "127.0.0.1:0"])
        .args(&["--no-default-bootstrap", "--no-lan", "--work-bits", "8"])
        .args(&["--replicas", "0"]);
    if let Some(passphrase) = passphrase {
        command = command.env("KOLOKOL_PASSPHRASE", passphrase);
    }
    command.spawn()
}

#[test]
fn a_locked_key_is_not_on_disk_and_up_needs_its_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");

    // A known secret, imported, then locked: the file must hold neither it nor the author id.
    let secret = [0x17u8; 32];
    let author = kolokol_core::keys::Keypair::from_secret_bytes(secret)
        .public()
        .to_string();
    let plain = tmp.path().join("plain.key");
    std::fs::write(&plain, hex::encode(secret)).unwrap();
    ok_json(
        offline(
            &dir,
            &[
                "--json",
                "identity",
                "import",
                "secret",
                plain.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap(),
    );
    std::fs::remove_file(&plain).unwrap();
    // No passphrase in the environment and no terminal: a clear error at once, the key untouched.
    let out = offline(&dir, &["identity", "lock", "secret"])
        .output()
        .unwrap();
    assert!(failed(&out).contains("KOLOKOL_PASSPHRASE"));
    let out = offline(&dir, &["--json", "identity", "lock", "secret"])
        .env("KOLOKOL_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    ok_json(out);
    let key_file = dir.join("identities/secret.key");
    let on_disk = std::fs::read_to_string(&key_file).unwrap();
    assert!(!on_disk.contains(&hex::encode(secret)), "{on_disk}");
    assert!(
        !on_disk.contains(&author),
        "the locked file names its author"
    );
    assert!(
        on_disk.starts_with("kolokol-author-key 1 argon2id"),
        "{on_disk}"
    );
    assert_eq!(mode(&key_file), 0o600);
    // Listed, but without its author id (that would prove authorship without the passphrase).
    let list = ok_json(
        offline(&dir, &["--json", "identity", "list"])
            .output()
            .unwrap(),
    );
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "secret")
        .unwrap()
        .clone();
    assert_eq!(entry["passphrase"], true);
    assert!(entry["author_id"].is_null(), "{entry}");

    // A new identity locked from the start, with another passphrase... from the same variable: `up` must then be
    // given one that opens every locked key, so this one uses the same.
    ok_json(
        offline(
            &dir,
            &["--json", "identity", "new", "second", "--passphrase"],
        )
        .env("KOLOKOL_PASSPHRASE", "correct horse")
        .output()
        .unwrap(),
    );

    let before = snapshot(&dir);
    // No terminal, no variable: `up` fails at once with a message, it does not wait.
    let out = up(&dir, None).map(|_| ()).unwrap_err();
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(message.contains("KOLOKOL_PASSPHRASE"), "{message}");
    assert!(message.contains("identity second is locked"), "{message}");
    // A wrong one: a clear error, nothing changed.
    let out = up(&dir, Some("wrong horse")).map(|_| ()).unwrap_err();
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("wrong passphrase"), "{message}");
    assert_eq!(snapshot(&dir), before, "a refused start changed files");

    // The right one: the node starts and signs as the locked identity.
    let node = up(&dir, Some("correct horse"))
        .unwrap_or_else(|out| panic!("did not start: {}", String::from_utf8_lossy(&out.stderr)));
    let file = tmp.path().join("clip.bin");
    random_file(&file, 40_000, 3);
    let published = ok_json(publish_as(&node, &file, "locked", "secret"));
    assert_eq!(
        record_author(&node, published["id"].as_str().unwrap()),
        author
    );
    // The running node knows the author ids of what it unlocked, and `identity list` shows them then.
    let list = node.json(&["identity", "list"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "secret")
        .unwrap()
        .clone();
    assert_eq!(entry["author_id"], author.as_str());
}

#[test]
fn export_import_round_trip_and_bad_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let plain = ok_json(
        offline(&a, &["--json", "identity", "new", "plain"])
            .output()
            .unwrap(),
    );
    let sealed = ok_json(
        offline(&a, &["--json", "identity", "new", "sealed", "--passphrase"])
            .env("KOLOKOL_PASSPHRASE", "pw one")
            .output()
            .unwrap(),
    );
    let (plain_backup, sealed_backup) =
        (tmp.path().join("plain.bak"), tmp.path().join("sealed.bak"));
    for (name, file) in [("plain", &plain_backup), ("sealed", &sealed_backup)] {
        ok_json(
            offline(
                &a,
                &["--json", "identity", "export", name, file.to_str().unwrap()],
            )
            .output()
            .unwrap(),
        );
        assert_eq!(mode(file), 0o600);
    }
    // An export never overwrites.
    let out = offline(
        &a,
        &[
            "identity",
            "export",
            "plain",
            sealed_backup.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(failed(&out).contains("exists already"));
    // The sealed backup stays sealed.
    let backup = std::fs::read_to_string(&sealed_backup).unwrap();
    assert!(backup.starts_with("kolokol-author-key"));
    assert!(!backup.contains(sealed["author_id"].as_str().unwrap()));

    // Imported into a node that is running: it signs with the imported keys at once.
    let node = NodeProcess::start(&b);
    let imported = node.json(&[
        "identity",
        "import",
        "restored",
        plain_backup.to_str().unwrap(),
    ]);
    assert_eq!(imported["author_id"], plain["author_id"]);
    // A sealed backup needs its passphrase: none (no terminal), then a wrong one, then the right one.
    let before = snapshot(&b);
    let out = node
        .cli_defaults(&[
            "identity",
            "import",
            "locked",
            sealed_backup.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(failed(&out).contains("KOLOKOL_PASSPHRASE"));
    let out = node
        .cli_defaults(&[
            "identity",
            "import",
            "locked",
            sealed_backup.to_str().unwrap(),
        ])
        .env("KOLOKOL_PASSPHRASE", "pw two")
        .output()
        .unwrap();
    assert!(failed(&out).contains("wrong passphrase"));
    assert_eq!(snapshot(&b), before, "a refused import changed files");
    let out = node
        .cli_defaults(&[
            "--json",
            "identity",
            "import",
            "locked",
            sealed_backup.to_str().unwrap(),
        ])
        .env("KOLOKOL_PASSPHRASE", "pw one")
        .output()
        .unwrap();
    assert_eq!(ok_json(out)["author_id"], sealed["author_id"]);

    let file = tmp.path().join("doc.bin");
    random_file(&file, 30_000, 4);
    for (identity, expected) in [("restored", &plain), ("locked", &sealed)] {
        let published = ok_json(publish_as(&node, &file, identity, identity));
        assert_eq!(
            record_author(&node, published["id"].as_str().unwrap()),
            expected["author_id"].as_str().unwrap()
        );
    }

    // Bad files and taken names: refused, nothing written.
    let before = snapshot(&b);
    let junk = tmp.path().join("junk");
    let truncated = &backup[..backup.len() / 2];
    let bad_files: [&[u8]; 5] = [
        b"not a key at all",
        &[0xff, 0xfe, 0x00],
        truncated.as_bytes(),
        &[b'a'; 4096],
        b"",
    ];
    for bytes in bad_files {
        std::fs::write(&junk, bytes).unwrap();
        let out = node.cli(&["identity", "import", "junk", junk.to_str().unwrap()]);
        let message = failed(&out);
        assert!(message.contains("not a kolokol author key"), "{message}");
    }
    let out = node.cli(&[
        "identity",
        "import",
        "restored",
        plain_backup.to_str().unwrap(),
    ]);
    assert!(failed(&out).contains("exists already"));
    let out = node.cli(&[
        "identity",
        "import",
        "x",
        tmp.path().join("missing").to_str().unwrap(),
    ]);
    failed(&out);
    assert_eq!(snapshot(&b), before);
}

#[test]
fn a_locked_key_put_in_place_by_hand_is_refused_until_unlocked() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let made = ok_json(
        offline(&a, &["--json", "identity", "new", "late", "--passphrase"])
            .env("KOLOKOL_PASSPHRASE", "later")
            .output()
            .unwrap(),
    );
    let node = NodeProcess::start(&b);
    // Copied in behind the node's back (as a restore from backup by hand would): the node cannot open it alone.
    std::fs::create_dir_all(b.join("identities")).unwrap();
    std::fs::copy(a.join("identities/late.key"), b.join("identities/late.key")).unwrap();
    let file = tmp.path().join("f.bin");
    random_file(&file, 20_000, 5);
    let records = record_count(&node);
    let message = failed(&publish_as(&node, &file, "t", "late"));
    assert!(message.contains("locked with a passphrase"), "{message}");
    assert_eq!(record_count(&node), records);

    let out = node
        .cli_defaults(&["--json", "identity", "unlock", "late"])
        .env("KOLOKOL_PASSPHRASE", "not it")
        .output()
        .unwrap();
    assert!(failed(&out).contains("wrong passphrase"));
    let out = node
        .cli_defaults(&["--json", "identity", "unlock", "late"])
        .env("KOLOKOL_PASSPHRASE", "later")
        .output()
        .unwrap();
    assert_eq!(ok_json(out)["author_id"], made["author_id"]);
    let published = ok_json(publish_as(&node, &file, "t", "late"));
    assert_eq!(
        record_author(&node, published["id"].as_str().unwrap()),
        made["author_id"].as_str().unwrap()
    );
}

/// Each identity has its own feed head in the DHT, signed with its own key and naming its own latest record: a
/// follower of either identity finds it. Tuned on purpose: feed polls every second (the default is 5 minutes).
#[test]
fn each_identity_puts_its_own_feed_head() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let fast = ["--feed-poll-secs", "1"];
    let p = NodeProcess::start_with(&tmp.path().join("p"), &fast);
    let p_dht = p.json(&["status"])["dht_addr"].as_str().unwrap().to_owned();
    let with_bootstrap = ["--feed-poll-secs", "1", "--bootstrap", &p_dht];
    let a = NodeProcess::start_with(&tmp.path().join("a"), &with_bootstrap);
    let f = NodeProcess::start_with(&tmp.path().join("f"), &with_bootstrap);
    let a_wire = a.json(&["status"])["wire_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    f.json(&["peer", "add", &a_wire]);

    let default_author = a.json(&["id"])["author_id"].as_str().unwrap().to_owned();
    let work = a.json(&["identity", "new", "work"])["author_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = tmp.path().join("a.bin");
    random_file(&file, 20_000, 6);
    let by_work = ok_json(publish_as(&a, &file, "by work", "work"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_default = a.json(&["publish", file.to_str().unwrap(), "--title", "by default"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let both = common::wait_for(Duration::from_secs(60), || {
        (f.has_record(&by_work) && f.has_record(&by_default)).then_some(())
    });
    assert!(both.is_some(), "F never got both records\n{}", f.log());

    f.json(&["follow", &work]);
    f.json(&["follow", &default_author]);
    // A feed is marked caught up (`feed_seq`) only when its head was found, verified as signed by the followed
    // author, and names a record of that author that F holds.
    let caught_up = common::wait_for(Duration::from_secs(60), || {
        let following = f.json(&["following"]);
        let follows = following.as_array().unwrap();
        (follows.len() == 2 && follows.iter().all(|x| x["feed_seq"].is_i64())).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "F never found both feed heads: {}\nF log:\n{}\nA log:\n{}",
        f.json(&["following"]),
        f.log(),
        a.log()
    );
    assert!(
        !f.log().contains("another author's record"),
        "a feed head named the other identity's record:\n{}",
        f.log()
    );
}
