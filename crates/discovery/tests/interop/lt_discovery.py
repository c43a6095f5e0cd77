#!/usr/bin/env python3
"""A private DHT of libtorrent nodes (Debian's python3-libtorrent) on 127.0.0.1 that kolokol nodes join.

Driven by crates/discovery/tests/interop.rs over stdin/stdout:

  1. starts --nodes libtorrent DHT nodes (ltutil.make_dht_net: loopback only, bootstrapping from each other)
     and prints "READY 127.0.0.1:PORT" (the address kolokol nodes bootstrap from);
  2. waits for a line "GO" on stdin (kolokol has announced / put by then), runs the command on one of its
     nodes and prints "PASS: ..." or "FAIL: ..." (and "SEQ N" after a put);
  3. keeps the DHT up until "STOP", end of input, or --lifetime seconds, then exits (status 0 = PASS).

  lt_discovery.py get-peers --infohash HEX --want-port N
  lt_discovery.py get-item  --pk HEX --salt-hex HEX --want-value-hex HEX --want-seq N
  lt_discovery.py put-item  --seed HEX --salt-hex HEX --value-hex HEX

kolokol nodes join a network of libtorrent nodes here; crates/dht/tests/interop_libtorrent.rs tests libtorrent
entering the DHT through a kolokol node. The shared helpers ltutil.py and bep44.py are imported from
$KOLOKOL_INTEROP_DIR, else <workspace>/../shared/interop.
"""
import argparse
import os
import select
import sys
import time


def interop_dir():
    env = os.environ.get("KOLOKOL_INTEROP_DIR")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    workspace = os.path.normpath(os.path.join(here, "..", "..", "..", ".."))
    return os.path.join(os.path.dirname(workspace), "shared", "interop")


sys.path.insert(0, interop_dir())
try:
    import libtorrent as lt  # noqa: E402
except ImportError:
    print("FAIL: cannot import libtorrent: install python3-libtorrent and run with /usr/bin/python3", flush=True)
    sys.exit(1)
import bep44  # noqa: E402
import ltutil  # noqa: E402


class Net:
    def __init__(self, sessions, lifetime):
        self.sessions = sessions
        self.end = time.time() + lifetime

    def pump(self, keep=None):
        """Drains every session's alerts; returns those of `keep`."""
        out = []
        for s in self.sessions:
            alerts = s.pop_alerts()
            if s is keep:
                out = alerts
        return out

    def expired(self):
        return time.time() > self.end

    def wait_line(self, want):
        """Pumps alerts until stdin gives a line equal to `want` (True), or end of input / lifetime (False)."""
        while not self.expired():
            self.pump()
            ready, _, _ = select.select([sys.stdin], [], [], 0.1)
            if ready:
                line = sys.stdin.readline()
                if not line:
                    return False
                if line.strip() == want:
                    return True
        return False


def get_peers(net, sess, args):
    ih = lt.sha1_hash(bytes.fromhex(args.infohash))
    end = time.time() + args.timeout
    last = 0
    seen = set()
    while time.time() < end and not net.expired():
        if time.time() - last > 2:
            sess.dht_get_peers(ih)
            last = time.time()
        for a in net.pump(sess):
            if isinstance(a, lt.dht_get_peers_reply_alert) and a.info_hash == ih:
                seen.update(a.peers())
        if ("127.0.0.1", args.want_port) in seen:
            return ltutil.result(True, "libtorrent get_peers found the kolokol rendezvous announce",
                                 f"peers={sorted(seen)}")
        time.sleep(0.05)
    return ltutil.result(False, "libtorrent get_peers", f"wanted 127.0.0.1:{args.want_port}, saw {sorted(seen)}")


def get_item(net, sess, args):
    pk = bytes.fromhex(args.pk)
    salt = bytes.fromhex(args.salt_hex)
    want = bytes.fromhex(args.want_value_hex)
    end = time.time() + args.timeout
    last = 0
    got = None
    while time.time() < end and not net.expired():
        if time.time() - last > 3:
            sess.dht_get_mutable_item(pk, salt)
            last = time.time()
        for a in net.pump(sess):
            if isinstance(a, lt.dht_mutable_item_alert) and bytes(a.key) == pk and a.seq >= 1:
                value = bep44.as_bytes(bep44.item_value(a))
                signed = bep44.signed_buffer(bep44.as_bytes(a.salt), a.seq, bep44.bencode(value))
                verified = bep44.ed_verify(pk, bytes(a.signature), signed)
                got = (value.hex(), a.seq, verified)
                if value == want and a.seq == args.want_seq and verified:
                    return ltutil.result(True, "libtorrent dht_get_mutable_item read the kolokol feed head",
                                         f"seq={a.seq} signature verifies ({bep44.ED_IMPL})")
        time.sleep(0.05)
    return ltutil.result(False, "libtorrent dht_get_mutable_item", f"last item seen (value, seq, verified): {got!r}")


def put_item(net, sess, args):
    seed = bytes.fromhex(args.seed)
    pk = bep44.ed_public(seed)
    sk = bep44.lt_secret_key(seed)
    salt = bytes.fromhex(args.salt_hex)
    value = bytes.fromhex(args.value_hex)
    end = time.time() + args.timeout
    last = 0
    while time.time() < end and not net.expired():
        if time.time() - last > 10:
            sess.dht_put_mutable_item(sk, pk, value, salt)
            last = time.time()
        for a in net.pump(sess):
            if isinstance(a, lt.dht_put_alert) and bytes(a.public_key) == pk and a.num_success > 0:
                print(f"SEQ {a.seq}", flush=True)
                return ltutil.result(True, "libtorrent dht_put_mutable_item stored the item",
                                     f"seq={a.seq} num_success={a.num_success} pk={pk.hex()}")
        time.sleep(0.05)
    return ltutil.result(False, "libtorrent dht_put_mutable_item", "no node acknowledged the put")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["get-peers", "get-item", "put-item"])
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--lifetime", type=float, default=150, help="hard limit on the whole run, seconds")
    ap.add_argument("--timeout", type=float, default=60, help="limit on the command itself, seconds")
    ap.add_argument("--infohash")
    ap.add_argument("--want-port", type=int)
    ap.add_argument("--pk")
    ap.add_argument("--salt-hex", default="")
    ap.add_argument("--want-value-hex")
    ap.add_argument("--want-seq", type=int)
    ap.add_argument("--seed")
    ap.add_argument("--value-hex")
    args = ap.parse_args()
    print(f"libtorrent {lt.__version__}", flush=True)
    sessions, ports, counts = ltutil.make_dht_net(args.nodes, wait=30)
    if min(counts) < 1:
        return ltutil.result(False, "libtorrent DHT came up", f"routing-table sizes {counts}")
    net = Net(sessions, args.lifetime)
    print(f"READY 127.0.0.1:{ports[0]}", flush=True)
    if not net.wait_line("GO"):
        return ltutil.result(False, "kolokol side said GO")
    command = {"get-peers": get_peers, "get-item": get_item, "put-item": put_item}[args.command]
    rc = command(net, sessions[-1], args)
    net.wait_line("STOP")
    return rc


if __name__ == "__main__":
    sys.exit(main())
