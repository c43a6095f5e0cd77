//! The node's modules form no import cycle (ARCHITECTURE.md, "Module layering"): every `crate::x` reference outside
//! test code, between top-level modules, must point down. Same check as `scripts/node-module-cycles.py`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn sources(path: &Path, out: &mut String) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        out.push_str(text);
    }
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || (path.is_file() && path.extension().is_none_or(|e| e != "rs")) {
            continue;
        }
        let mut text = String::new();
        sources(&path, &mut text);
        modules
            .entry(name)
            .or_insert_with(String::new)
            .push_str(&text);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .into_iter()
        .map(|(name, text)| {
            let deps = text
                .split("crate::")
                .skip(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect::<String>()
                })
                .filter(|dep| *dep != name && names.contains(dep))
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn the_node_modules_form_no_import_cycle() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.contains_key("peering") && graph.contains_key("fetch"));
    // No module bundles every owner's handle for everyone (the old `context::Inner`): each driver holds its own.
    assert!(
        !graph.contains_key("context"),
        "a shared context module is back"
    );
    // Repeatedly remove modules that depend on no remaining module; what is left is in (or above) a cycle.
    let mut left = graph.clone();
    loop {
        let leaves: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(name, _)| name.clone())
            .collect();
        if leaves.is_empty() {
            break;
        }
        for leaf in leaves {
            left.remove(&leaf);
        }
    }
    assert!(
        left.is_empty(),
        "modules in or above an import cycle: {left:#?}"
    );
}
