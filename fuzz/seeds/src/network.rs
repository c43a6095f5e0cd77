//! Seeds for the targets that read from the network: wire messages and handshakes, DHT and LAN values, the
//! proxy's clients and the bridge tunnel.

use std::net::SocketAddrV4;

use kolokol_core::Keypair;
use kolokol_core::record::RecordId;
use kolokol_core::replication::ByteRange;
use kolokol_discovery::DhtState;
use kolokol_discovery::feed::{FeedHead, encode_feed_value};
use kolokol_discovery::lan::Announce;
use kolokol_proxy::tunnel::frame::{Frame, RefuseReason, pad_body};
use kolokol_proxy::{BridgeKey, Host, Invitation, InviteSecret};
use kolokol_wire::Message;

use crate::{Seeds, join_chunks};

fn encoded(message: &Message) -> Vec<u8> {
    message.encode().expect("a valid message")
}

pub fn wire_seeds(seeds: &mut Seeds, record: &[u8]) {
    let node = Keypair::from_secret_bytes([5; 32]);
    let messages = [
        Message::Hello {
            protocol: kolokol_wire::PROTOCOL_VERSION,
            agent: "kolokol/0.1.0".to_owned(),
            bt_port: 6881,
        },
        Message::Have {
            ids: vec![RecordId([1; 32]), RecordId([7; 32])],
        },
        Message::Fetch {
            ids: vec![RecordId([7; 32])],
        },
        Message::Records {
            records: vec![record.to_vec()],
        },
        Message::Fetch {
            ids: vec![RecordId([8; 32])],
        },
        Message::Have {
            ids: vec![RecordId([8; 32]), RecordId([9; 32])],
        },
        Message::FetchAuthor {
            author: node.public(),
        },
        Message::Reconcile {
            session: 7,
            frame: vec![0x61, 0x00, 0x00],
        },
        Message::Ping { nonce: 42 },
        Message::Pong { nonce: 42 },
        Message::Replicate {
            record: record.to_vec(),
        },
        Message::Decline { infohash: [4; 20] },
        Message::Holding {
            infohashes: vec![[4; 20]],
        },
        Message::Challenge {
            id: 9,
            infohash: [4; 20],
            nonce: [6; 32],
            ranges: vec![
                ByteRange {
                    offset: 0,
                    len: 4096,
                },
                ByteRange {
                    offset: 70_000,
                    len: 16,
                },
            ],
        },
        Message::Proof {
            id: 9,
            digest: [8; 32],
        },
    ];
    let all: Vec<Vec<u8>> = messages.iter().map(encoded).collect();
    seeds.write(
        "wire_message",
        "exchange",
        &join_chunks(all.iter().map(Vec::as_slice)),
    );
    seeds.write("bencode", "wire-hello", &all[0]);

    // Mode 2 of wire_handshake: plaintext chunks (first byte odd) holding length-prefixed messages; the second
    // message is split across two frames.
    let framed: Vec<Vec<u8>> = all[..4]
        .iter()
        .map(|m| {
            let mut out = (m.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(m);
            out
        })
        .collect();
    let (head, tail) = framed[1].split_at(5);
    let plain: Vec<Vec<u8>> = [
        framed[0].as_slice(),
        head,
        tail,
        framed[2].as_slice(),
        framed[3].as_slice(),
    ]
    .iter()
    .map(|chunk| [&[1u8][..], chunk].concat())
    .collect();
    let mut honest = vec![2u8];
    honest.extend(join_chunks(plain.iter().map(Vec::as_slice)));
    seeds.write("wire_handshake", "honest-frames", &honest);
    // Modes 0 and 1: a first handshake message of the right size (an ephemeral key), then a short frame.
    let mut raw = vec![0u8, 0, 32];
    raw.extend_from_slice(&[0x11; 32]);
    raw.extend_from_slice(&[0, 48]);
    raw.extend_from_slice(&[0x22; 48]);
    seeds.write("wire_handshake", "raw-to-responder", &raw);
    raw[0] = 1;
    seeds.write("wire_handshake", "raw-to-initiator", &raw);
}

pub fn discovery_seeds(seeds: &mut Seeds) {
    let head = FeedHead {
        latest: RecordId([6; 32]),
        count: 12,
    };
    let mut feed = vec![0u8];
    feed.extend(encode_feed_value("kolokol", &head).expect("a valid head"));
    seeds.write("dht_values", "feed-value", &feed);
    let node = Keypair::from_secret_bytes([5; 32]);
    let mut announce = vec![1u8];
    announce.extend_from_slice(&Announce::new("kolokol", node.public(), 7420).encode());
    seeds.write("dht_values", "lan-announce", &announce);
    let nodes: Vec<SocketAddrV4> = vec![
        "203.0.113.1:6881".parse().expect("address"),
        "198.51.100.2:51413".parse().expect("address"),
    ];
    let mut state = vec![2u8];
    state.extend(DhtState::new("kolokol", true, &nodes).encode());
    seeds.write("dht_values", "state-file", &state);
}

pub fn proxy_seeds(seeds: &mut Seeds) {
    let bridge = BridgeKey::generate().expect("a bridge key");
    let invitations = [
        ("ipv4", Host::parse("203.0.113.9").expect("host")),
        ("ipv6", Host::parse("2001:db8::9").expect("host")),
        ("name", Host::parse("bridge.example.org").expect("host")),
    ];
    for (name, host) in invitations {
        let invitation = Invitation {
            host,
            port: 443,
            bridge_key: bridge.public(),
            secret: InviteSecret::from_bytes([5; 32]),
        };
        let mut code = vec![0u8];
        code.extend_from_slice(invitation.to_code().as_bytes());
        seeds.write("bridge_invitation", &format!("code-{name}"), &code);
        let form = invitation.to_bytes();
        let mut body = vec![1u8];
        body.extend_from_slice(&form[..form.len() - 4]);
        seeds.write("bridge_invitation", &format!("binary-{name}"), &body);
    }
    let mut key = vec![2u8];
    key.extend_from_slice(&bridge.to_bytes());
    seeds.write("bridge_invitation", "bridge-key", &key);

    let frames = [
        Frame::Open {
            id: 1,
            host: "example.org".to_owned(),
            port: 443,
        },
        Frame::Opened { id: 1 },
        Frame::Data {
            id: 1,
            data: b"GET / HTTP/1.1\r\n\r\n".to_vec().into(),
        },
        Frame::Window {
            id: 1,
            increment: 65536,
        },
        Frame::Refused {
            id: 3,
            reason: RefuseReason::Dns,
        },
        Frame::Fin { id: 1 },
        Frame::Reset { id: 3 },
        Frame::Ping { nonce: 9 },
        Frame::Pong { nonce: 9 },
    ];
    let mut body = Vec::new();
    for frame in &frames {
        frame.encode_into(&mut body);
    }
    let mut record = vec![0u8];
    record.extend(pad_body(&body));
    seeds.write("bridge_tunnel", "record", &record);
    // Mode 1: a nonce, then an envelope header (Noise message of 56 bytes, 8 bytes of padding) and its bytes.
    let mut envelope = vec![1u8];
    envelope.extend_from_slice(&[0x33; 32]);
    envelope.extend_from_slice(&[0, 56, 0, 8]);
    envelope.extend_from_slice(&[0x44; 64]);
    seeds.write("bridge_tunnel", "envelope", &envelope);
    let mut probe = vec![2u8];
    probe.extend_from_slice(&[0x55; 120]);
    seeds.write("bridge_tunnel", "probe", &probe);

    let socks_domain = [
        &[0u8, 1, 0][..],
        &[5, 1, 0, 3, 11],
        b"example.org",
        &[1, 187],
    ]
    .concat();
    seeds.write("proxy_request", "socks-domain", &socks_domain);
    seeds.write(
        "proxy_request",
        "socks-ipv4",
        &[0, 2, 0, 2, 5, 1, 0, 1, 203, 0, 113, 5, 0, 80],
    );
    let connect = [
        &[1u8][..],
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
    ]
    .concat();
    seeds.write("proxy_request", "http-connect", &connect);
    let get = [
        &[1u8][..],
        b"GET http://example.org/path?q=1 HTTP/1.1\r\nHost: example.org\r\nProxy-Connection: keep-alive\r\nUser-Agent: curl\r\n\r\nbody",
    ]
    .concat();
    seeds.write("proxy_request", "http-get", &get);
    let redirect = [
        &[2u8][..],
        b"HTTP/1.1 302 Found\r\nLocation: http://blocked.example/page\r\nContent-Length: 0\r\n\r\n",
    ]
    .concat();
    seeds.write("proxy_request", "answer-redirect", &redirect);
    let page = [
        &[2u8][..],
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 31\r\n\r\n<html>blocked by order</html>\r\n",
    ]
    .concat();
    seeds.write("proxy_request", "answer-page", &page);
}
