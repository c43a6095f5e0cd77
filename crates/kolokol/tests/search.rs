//! `kolokol search` through the CLI and the HTTP API, on a node with no network at all.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;

fn titles(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn search_finds_russian_and_english_with_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&tmp.path().join("n"));
    let publish = |name: &str, title: &str, extra: &[&str]| {
        let path = tmp.path().join(name);
        std::fs::write(&path, title).unwrap();
        let mut args = vec!["publish", path.to_str().unwrap(), "--title", title];
        args.extend_from_slice(extra);
        node.json(&args)
    };
    publish(
        "a.mp4",
        "Митинг в Москве",
        &["--tag", "протест", "--lang", "ru"],
    );
    publish(
        "b.jpg",
        "Protest in Moscow",
        &["--lang", "en", "--description", "Москва, площадь"],
    );
    publish("c.txt", "Статья о выборах", &["--lang", "ru"]);

    assert_eq!(
        titles(&node.json(&["search", "МОСКВ"])),
        ["Митинг в Москве", "Protest in Moscow"]
    );
    assert_eq!(
        titles(&node.json(&["search", "prot"])),
        ["Protest in Moscow"]
    );
    assert_eq!(
        titles(&node.json(&["search", "москв", "--lang", "en"])),
        ["Protest in Moscow"]
    );
    assert_eq!(
        titles(&node.json(&["search", "--media", "video"])),
        ["Митинг в Москве"]
    );
    assert_eq!(
        titles(&node.json(&["search", "--tag", "ПРОТЕСТ"])),
        ["Митинг в Москве"]
    );
    assert_eq!(
        titles(&node.json(&["search", "--media", "text", "--since", "2000-01-01"])),
        ["Статья о выборах"]
    );
    assert!(titles(&node.json(&["search", "несуществующее"])).is_empty());

    let bad = node.cli(&["search", "x", "--media", "hologram"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown media type"));
    let bad = node.cli(&["search", "x", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "a bad --since is a usage error");
}
