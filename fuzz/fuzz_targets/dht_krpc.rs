//! KRPC from any DHT node: the lenient decoder never panics, what it accepts re-encodes to a message that decodes
//! to the same thing, and a node fed any sequence of datagrams answers only with messages that decode, echoing
//! the transaction id of each query it answers.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use kolokol_dht::krpc::{Body, Message};
use kolokol_dht::{Config, Node};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode()).expect("a decoded message re-encodes to a valid one");
        assert_eq!(again, message);
    }
    let now = Instant::now();
    let mut node = Node::new(StdRng::seed_from_u64(0), Config::default());
    let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 6881);
    node.bootstrap(now, &[peer]);
    for (i, chunk) in kolokol_fuzz::chunks(data, 8).into_iter().enumerate() {
        let at = now + Duration::from_millis(300 * i as u64);
        node.handle_packet(at, peer, chunk);
        let query_tid = match Message::decode(chunk) {
            Ok(Message { tid, body: Body::Query(_), .. }) => Some(tid),
            _ => None,
        };
        while let Some(t) = node.poll_transmit() {
            let out = Message::decode(&t.bytes).expect("the node sends only valid KRPC");
            if t.to == peer
                && let (Some(tid), Body::Response(_) | Body::Error { .. }) = (&query_tid, &out.body)
            {
                assert_eq!(&out.tid, tid, "an answer echoes the query's transaction id");
            }
        }
        node.handle_timeout(at);
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
});
