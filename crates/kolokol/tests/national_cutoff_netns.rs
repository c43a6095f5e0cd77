//! A national cut-off (issue 7): the country's nodes keep working as one network when the link to the outside is cut,
//! and both sides catch up when it heals.
//!
//! ```text
//!  inside ns (the country)                         outside ns (the rest of the world)
//!  10 kolokol nodes on 198.18.20.1  --- veth ---   DHT bootstrap node + 2 kolokol nodes on 198.18.20.2
//!                                          ^ the censor's switch: iptables DROP on the outside end
//! ```
//!
//! Inside nodes are told only the outside bootstrap node. Once the network has formed, the link is cut: a publication
//! made inside still reaches every inside catalog and downloads from inside peers, and an inside node restarted
//! during the cut finds the others again from its saved state. The outside publishes too. When the link heals, each
//! side receives what the other published meanwhile.
//!
//! Needs root (for `ip netns`) and iptables (scripts/test.sh runs as root and installs it); it fails without. The
//! addresses (198.18.0.0/15, reserved for network tests) exist only inside the namespaces this test creates and
//! always removes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod proxy_common;

use std::path::Path;
use std::time::Duration;

use common::{NodeProcess, random_file, sha256_file, wait_for};
use kolokol_testkit::netns::Namespaces;
use proxy_common::{json_in_netns, start_in_netns};

const INSIDE_IP: &str = "198.18.20.1";
const OUTSIDE_IP: &str = "198.18.20.2";
const INSIDE_NODES: usize = 10;

/// The two namespaces and the link between them (kolokol-testkit's [`Namespaces`]: removed when dropped, even if the
/// test failed).
struct Net {
    inside: String,
    outside: String,
    namespaces: Namespaces,
}

impl Net {
    fn create() -> Net {
        let namespaces = Namespaces::create(&["kci", "kco"]).unwrap();
        let (i, o) = (0, 1);
        namespaces.link(i, "eth0", o, "eth0").unwrap();
        for (ns, ip) in [(i, INSIDE_IP), (o, OUTSIDE_IP)] {
            namespaces
                .sh(
                    ns,
                    &format!(
                        "ip link set lo up; ip link set eth0 up; ip addr add {ip}/24 dev eth0"
                    ),
                )
                .unwrap();
        }
        Net {
            inside: namespaces.name(i).to_owned(),
            outside: namespaces.name(o).to_owned(),
            namespaces,
        }
    }

    /// The censor's switch: every packet between the two sides is dropped (silently, as a cut cable would).
    fn cut(&self) {
        self.outside_iptables("-A");
    }

    fn heal(&self) {
        self.outside_iptables("-D");
    }

    fn outside_iptables(&self, op: &str) {
        self.namespaces
            .sh(
                1,
                &format!(
                    "iptables {op} INPUT -i eth0 -j DROP; iptables {op} OUTPUT -o eth0 -j DROP"
                ),
            )
            .unwrap();
    }
}

/// One node in a namespace, with the namespace it lives in.
struct Member {
    ns: String,
    node: NodeProcess,
}

impl Member {
    fn start(ns: &str, ip: &str, dir: &Path, bootstrap: Option<&str>) -> Member {
        let listen = format!("{ip}:0");
        let mut args = vec![
            "--listen",
            &listen,
            "--wire",
            &listen,
            "--dht",
            &listen,
            // Rendezvous every 2 s even while connected (the default slows to 10 min once a node has a peer):
            // when the link heals, the two sides, each connected among itself, must look for each other soon for
            // the test to end within its bounds. DHT answering and time-outs are the defaults.
            "--rendezvous-secs",
            "2",
            "--reconcile-secs",
            "5",
            "--no-default-bootstrap",
            "--no-lan",
            "--no-proxy",
            "--work-bits",
            "8",
            "--replicas",
            "0",
        ];
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap", b]);
        }
        Member {
            ns: ns.to_owned(),
            node: start_in_netns(ns, dir, &args),
        }
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        json_in_netns(&self.ns, &self.node, args)
    }

    fn has(&self, id: &str) -> bool {
        self.json(&["list", "--limit", "1000"])
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    }

    fn connected(&self) -> usize {
        self.json(&["peers"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["connected"] == true)
            .count()
    }

    fn publish(&self, dir: &Path, name: &str, seed: u64) -> (String, std::path::PathBuf) {
        let file = dir.join(name);
        random_file(&file, 3 * 1024 * 1024, seed);
        let id = self.json(&["publish", file.to_str().unwrap(), "--title", name])["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, file)
    }
}

fn all_have(members: &[&Member], id: &str, limit: Duration, what: &str) {
    for (n, m) in members.iter().enumerate() {
        let got = wait_for(limit, || m.has(id).then_some(()));
        assert!(
            got.is_some(),
            "{what}: node {n} in {} never got {id}\n{}",
            m.ns,
            m.node.log()
        );
    }
}

#[test]
fn the_inside_keeps_working_when_cut_off_and_both_sides_catch_up_after() {
    let net = Net::create();
    let tmp = tempfile::tempdir().unwrap();
    let boot = Member::start(&net.outside, OUTSIDE_IP, &tmp.path().join("boot"), None);
    let boot_dht = boot.json(&["status"])["dht_addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let outside: Vec<Member> = (0..2)
        .map(|i| {
            Member::start(
                &net.outside,
                OUTSIDE_IP,
                &tmp.path().join(format!("o{i}")),
                Some(&boot_dht),
            )
        })
        .collect();
    let mut inside: Vec<Member> = (0..INSIDE_NODES)
        .map(|i| {
            Member::start(
                &net.inside,
                INSIDE_IP,
                &tmp.path().join(format!("i{i}")),
                Some(&boot_dht),
            )
        })
        .collect();
    // Before the cut: one network. A publication from outside reaches the country.
    let (before, _) = outside[0].publish(tmp.path(), "before.bin", 1);
    let everyone: Vec<&Member> = std::iter::once(&boot)
        .chain(&outside)
        .chain(&inside)
        .collect();
    all_have(
        &everyone,
        &before,
        Duration::from_secs(90),
        "before the cut",
    );
    for m in &inside {
        assert!(m.connected() > 0, "{}", m.node.log());
    }

    net.cut();

    // Inside, cut off: a new publication reaches every inside catalog and downloads from inside peers.
    let (during, file) = inside[0].publish(tmp.path(), "during.bin", 2);
    let inside_refs: Vec<&Member> = inside.iter().collect();
    all_have(
        &inside_refs,
        &during,
        Duration::from_secs(90),
        "inside during the cut",
    );
    for m in std::iter::once(&boot).chain(&outside) {
        assert!(!m.has(&during), "the cut leaked a record outwards");
    }
    let out = tmp.path().join("got");
    let got = inside[5].json(&[
        "get",
        &during,
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "120",
    ]);
    assert_eq!(got["finished"], true, "{got}");
    assert_eq!(sha256_file(&out.join("during.bin")), sha256_file(&file));

    // The outside publishes too, unseen inside for now.
    let (outside_news, _) = outside[1].publish(tmp.path(), "outside.bin", 3);

    // An inside node restarted during the cut finds the others from its saved state (its only configured bootstrap is
    // outside, out of reach) and catches up with what was published while it was down.
    let Member { ns, node } = inside.pop().unwrap();
    let restarted_dir = node.data_dir.clone();
    assert!(node.stop(), "clean stop");
    let (while_down, _) = inside[0].publish(tmp.path(), "while-down.bin", 4);
    inside.push(Member::start(
        &ns,
        INSIDE_IP,
        &restarted_dir,
        Some(&boot_dht),
    ));
    let restarted = &inside[INSIDE_NODES - 1];
    let back = wait_for(Duration::from_secs(90), || {
        (restarted.connected() > 0).then_some(())
    });
    assert!(
        back.is_some(),
        "restarted node found nobody\n{}",
        restarted.node.log()
    );
    all_have(
        &[restarted],
        &while_down,
        Duration::from_secs(90),
        "restarted inside node",
    );
    assert!(!inside[1].has(&outside_news), "the cut leaked a record");

    net.heal();

    // Healed: each side receives what the other published meanwhile.
    let inside_refs: Vec<&Member> = inside.iter().collect();
    all_have(
        &inside_refs,
        &outside_news,
        Duration::from_secs(180),
        "inside after the heal",
    );
    let outside_refs: Vec<&Member> = std::iter::once(&boot).chain(&outside).collect();
    all_have(
        &outside_refs,
        &during,
        Duration::from_secs(180),
        "outside after the heal",
    );
    all_have(
        &outside_refs,
        &while_down,
        Duration::from_secs(180),
        "outside after the heal",
    );
}
