use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use proptest::prelude::*;

use super::*;

const HEX: &str = "c9e15763f722f23e98a29decdfae341b98d53056";

fn hash() -> InfoHash {
    HEX.parse().unwrap()
}

#[test]
fn parses_a_typical_link() {
    let m = Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}&dn=Cosmos+Laundromat%20%D0%BA%D0%B8%D0%BD%D0%BE&tr=udp%3A%2F%2Ftracker.example%3A6969\
         &tr=https://t.example/announce&x.pe=10.0.0.1:6881&x.pe=%5B::1%5D:51413&xl=123&ws=http%3A%2F%2Fx",
        HEX.to_uppercase()
    ))
    .unwrap();
    assert_eq!(m.infohash, hash());
    assert_eq!(m.name.as_deref(), Some("Cosmos Laundromat кино"));
    assert_eq!(
        m.trackers,
        ["udp://tracker.example:6969", "https://t.example/announce"]
    );
    assert_eq!(
        m.peers,
        [
            "10.0.0.1:6881".parse::<SocketAddr>().unwrap(),
            "[::1]:51413".parse().unwrap()
        ]
    );
}

#[test]
fn base32_infohash() {
    // The same infohash in RFC 4648 base32, upper and lower case.
    let base32 = "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW";
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{base32}"))
            .unwrap()
            .infohash,
        hash()
    );
    let lower = base32.to_lowercase();
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{lower}"))
            .unwrap()
            .infohash,
        hash()
    );
    let bad = "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMC1";
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{bad}")),
        Err(MagnetError::BadInfohash(bad.into()))
    );
}

#[test]
fn v2_and_hybrid_links() {
    let btmh = "urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt={btmh}")),
        Err(MagnetError::V2Only)
    );
    assert_eq!(
        MagnetError::V2Only.to_string(),
        "only v1 (btih) magnet links are supported"
    );
    let hybrid = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&xt={btmh}")).unwrap();
    assert_eq!(hybrid.infohash, hash());
    let numbered = Magnet::parse(&format!("magnet:?xt.1={btmh}&xt.2=urn:btih:{HEX}")).unwrap();
    assert_eq!(numbered.infohash, hash());
}

#[test]
fn refuses_malformed_links() {
    let p = |s: &str| Magnet::parse(s);
    assert_eq!(p("http://example.com"), Err(MagnetError::NotMagnet));
    assert_eq!(p("magnet:"), Err(MagnetError::NotMagnet));
    assert_eq!(p("magnet:?dn=x"), Err(MagnetError::NoInfohash));
    assert_eq!(
        p(&format!("magnet:?xt=urn:btih:{HEX}&flag")),
        Err(MagnetError::MissingEquals("flag".into()))
    );
    assert_eq!(
        p("magnet:?xt=urn:btih:abc"),
        Err(MagnetError::BadInfohash("abc".into()))
    );
    let other = "0".repeat(40);
    assert_eq!(
        p(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}")),
        Err(MagnetError::MultipleInfohashes)
    );
    let base = format!("magnet:?xt=urn:btih:{HEX}");
    assert_eq!(
        p(&format!("{base}&dn=%4")),
        Err(MagnetError::BadPercentEncoding("dn".into()))
    );
    assert_eq!(
        p(&format!("{base}&dn=%zz")),
        Err(MagnetError::BadPercentEncoding("dn".into()))
    );
    assert_eq!(
        p(&format!("{base}&dn=%FF")),
        Err(MagnetError::NotUtf8("dn".into()))
    );
    assert_eq!(
        p(&format!("{base}&dn=a%0Ab")),
        Err(MagnetError::ControlCharacter("dn".into()))
    );
    assert_eq!(
        p(&format!("{base}&dn=a&dn=b")),
        Err(MagnetError::DuplicateName)
    );
    assert_eq!(
        p(&format!("{base}&tr=notaurl")),
        Err(MagnetError::BadTracker("notaurl".into()))
    );
    assert_eq!(
        p(&format!("{base}&tr=")),
        Err(MagnetError::BadTracker(String::new()))
    );
    for peer in [
        "example.com:80",
        "1.2.3.4",
        "::1:80",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        "[::1]",
    ] {
        assert_eq!(
            p(&format!("{base}&x.pe={peer}")),
            Err(MagnetError::BadPeer(peer.into())),
            "{peer}"
        );
    }
    assert_eq!(p(&format!("{base}&dn=")).unwrap().name, None);
}

#[test]
fn caps_are_enforced() {
    let base = format!("magnet:?xt=urn:btih:{HEX}");
    let trackers = |n: usize| {
        (0..n)
            .map(|i| format!("&tr=udp://t{i}.example:1"))
            .collect::<String>()
    };
    assert_eq!(
        Magnet::parse(&format!("{base}{}", trackers(MAX_TRACKERS)))
            .unwrap()
            .trackers
            .len(),
        32
    );
    assert_eq!(
        Magnet::parse(&format!("{base}{}", trackers(MAX_TRACKERS + 1))),
        Err(MagnetError::TooManyTrackers)
    );
    let peers = |n: usize| {
        (0..n)
            .map(|i| format!("&x.pe=10.0.0.{}:1", i % 250))
            .collect::<String>()
    };
    assert_eq!(
        Magnet::parse(&format!("{base}{}", peers(MAX_PEERS)))
            .unwrap()
            .peers
            .len(),
        64
    );
    assert_eq!(
        Magnet::parse(&format!("{base}{}", peers(MAX_PEERS + 1))),
        Err(MagnetError::TooManyPeers)
    );
    let at_limit = format!(
        "{base}&dn={}",
        "a".repeat(MAX_MAGNET_BYTES - base.len() - 4)
    );
    assert_eq!(at_limit.len(), MAX_MAGNET_BYTES);
    assert!(Magnet::parse(&at_limit).is_ok());
    assert_eq!(
        Magnet::parse(&format!("{at_limit}a")),
        Err(MagnetError::TooLong {
            len: MAX_MAGNET_BYTES + 1
        })
    );
}

#[test]
fn prints_a_percent_encoded_link() {
    let m = Magnet {
        infohash: hash(),
        name: Some("Кино & fun+1".into()),
        peers: vec!["[2001:db8::1]:6881".parse().unwrap()],
        trackers: vec!["udp://t.example:1337/announce".into()],
    };
    assert_eq!(
        m.to_uri(),
        format!(
            "magnet:?xt=urn:btih:{HEX}&dn=%D0%9A%D0%B8%D0%BD%D0%BE%20%26%20fun%2B1\
             &tr=udp%3A%2F%2Ft.example%3A1337%2Fannounce&x.pe=%5B2001%3Adb8%3A%3A1%5D%3A6881"
        )
    );
    assert_eq!(m.to_string().parse::<Magnet>(), Ok(m));
    assert_eq!(
        Magnet::new(hash()).to_uri(),
        format!("magnet:?xt=urn:btih:{HEX}")
    );
}

fn arb_peer() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1..=u16::MAX).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), 1..=u16::MAX).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
}

fn arb_magnet() -> impl Strategy<Value = Magnet> {
    (
        any::<[u8; 20]>(),
        prop::option::of("\\PC{1,40}"),
        prop::collection::vec(arb_peer(), 0..=8),
        prop::collection::vec("(udp|http|https|wss)://\\PC{1,40}", 0..=8),
    )
        .prop_map(|(hash, name, peers, trackers)| Magnet {
            infohash: InfoHash(hash),
            name,
            peers,
            trackers,
        })
}

proptest! {
    #[test]
    fn round_trips(m in arb_magnet()) {
        prop_assert_eq!(Magnet::parse(&m.to_uri()), Ok(m));
    }

    #[test]
    fn never_panics(s in "\\PC{0,300}") {
        let _ = Magnet::parse(&s);
        let _ = Magnet::parse(&format!("magnet:?{s}"));
        let _ = Magnet::parse(&format!("magnet:?xt=urn:btih:{s}"));
    }

    #[test]
    fn never_panics_on_mangled_links(m in arb_magnet(), cut in any::<prop::sample::Index>(), junk in "[%&=+:?\\[\\]a-f0-9]{0,6}") {
        let uri = m.to_uri();
        let mut at = cut.index(uri.len() + 1);
        while !uri.is_char_boundary(at) {
            at -= 1;
        }
        let _ = Magnet::parse(&format!("{}{junk}{}", &uri[..at], &uri[at..]));
    }
}
