#!/usr/bin/python3
"""A private mainline DHT (BEP 5, BEP 44) of libtorrent nodes on 127.0.0.1, driven by a test over stdin/stdout.

  lt_dht.py [--nodes 6] [--lifetime 300] [--command-timeout 60]

Starts the nodes (they know only each other), prints `READY 127.0.0.1:P1 127.0.0.1:P2 ...` and then runs one
command per stdin line, each answered by a final `PASS: ...` or `FAIL: ...` line:

  find-peers HEX40 PORT           get_peers for the info-hash (again every 2 s) until 127.0.0.1:PORT is among the
                                  peers; prints `PEERS HEX40 ...` for each reply on the way
  get-item PK SALT VALUE SEQ      BEP 44 mutable item of Ed25519 key PK (hex) and SALT (hex, `-` for none) until
                                  one with VALUE (hex) and SEQ arrives whose signature also verifies with an
                                  Ed25519 implementation other than libtorrent's (python3-cryptography)
  put-item SEED SALT VALUE        stores VALUE (hex) under the key of the 32-byte Ed25519 SEED (hex); prints
                                  `SEQ N` before PASS, and PASS names the public key libtorrent signed for

It exits when stdin closes or after --lifetime seconds, so it never outlives its test. Every node binds
127.0.0.1 and bootstraps only from the others (see loopback.py).

Key formats, the part implementations trip over: BEP 44 public keys are standard RFC 8032 keys of the 32-byte
seed, but libtorrent's dht_put_mutable_item() wants the 64-byte *expanded* secret key: SHA-512 of the seed with
the scalar clamped (byte 0 &= 248, byte 31 &= 63, byte 31 |= 64). Debian's 2.0.8 binding hands an item back as a
dict whose 'value' is the stored string.
"""
import argparse
import hashlib
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopback import HOST, dht_testnet, lt, report  # noqa: E402

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:
    print("FAIL: cannot import cryptography: apt-get install python3-cryptography", flush=True)
    sys.exit(2)


def public_key(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def expanded_secret(seed):
    """The 64-byte secret libtorrent signs with (see the module docs)."""
    digest = bytearray(hashlib.sha512(seed).digest())
    digest[0] &= 248
    digest[31] &= 63
    digest[31] |= 64
    return bytes(digest)


def signature_verifies(pk, signature, salt, seq, value):
    """BEP 44: the signature covers `4:salt<len>:<salt>` (if salted) `3:seqi<seq>e1:v<bencoded value>`."""
    signed = b""
    if salt:
        signed += b"4:salt%d:%s" % (len(salt), salt)
    signed += b"3:seqi%de1:v%d:%s" % (seq, len(value), value)
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(signature, signed)
        return True
    except (InvalidSignature, ValueError):
        return False


def to_bytes(value):
    return value if isinstance(value, bytes) else str(value).encode()


def item_value(alert):
    item = alert.item
    if isinstance(item, dict) and "value" in item:
        return to_bytes(item["value"])
    return to_bytes(item)


class Testnet:
    def __init__(self, sessions, lifetime, command_timeout):
        self.sessions = sessions
        self.asker = sessions[-1]
        self.ends = time.time() + lifetime
        self.command_timeout = command_timeout

    def alive(self):
        return time.time() < self.ends

    def pump(self):
        """Drains every node's alerts (a full queue stalls a node); returns the asking node's."""
        mine = []
        for sess in self.sessions:
            alerts = sess.pop_alerts()
            if sess is self.asker:
                mine = alerts
        return mine

    def run_until(self, step, every):
        """Calls `query()` every `every` seconds and `step(alerts)` on each batch of the asker's alerts until step
        returns a result, the command times out (None) or the lifetime ends."""
        deadline = min(self.ends, time.time() + self.command_timeout)
        asked = 0.0
        while time.time() < deadline:
            if time.time() - asked > every:
                step.query()
                asked = time.time()
            done = step.handle(self.pump())
            if done is not None:
                return done
            time.sleep(0.05)
        return None

    def find_peers(self, hexhash, port):
        target = lt.sha1_hash(bytes.fromhex(hexhash))
        seen = set()
        asker = self.asker

        class Step:
            def query(self):
                asker.dht_get_peers(target)

            def handle(self, alerts):
                for alert in alerts:
                    if isinstance(alert, lt.dht_get_peers_reply_alert) and alert.info_hash == target:
                        peers = alert.peers()
                        print(f"PEERS {hexhash} " + " ".join(f"{h}:{p}" for h, p in peers), flush=True)
                        seen.update(peers)
                if (HOST, port) in seen:
                    return report(True, f"find-peers {hexhash} found {HOST}:{port}")
                return None

        done = self.run_until(Step(), every=2)
        if done is None:
            return report(False, f"find-peers {hexhash}: no {HOST}:{port} among {sorted(seen)}")
        return done

    def get_item(self, pk, salt, value, seq):
        asker = self.asker
        last = [None]

        class Step:
            def query(self):
                asker.dht_get_mutable_item(pk, salt)

            def handle(self, alerts):
                for alert in alerts:
                    if not isinstance(alert, lt.dht_mutable_item_alert) or bytes(alert.key) != pk:
                        continue
                    got = item_value(alert)
                    verified = signature_verifies(pk, bytes(alert.signature), to_bytes(alert.salt), alert.seq, got)
                    last[0] = (got.hex(), alert.seq, verified)
                    if got == value and alert.seq == seq and verified:
                        return report(True, f"get-item read seq={seq}; the signature verifies (RFC 8032)")
                return None

        done = self.run_until(Step(), every=3)
        if done is None:
            return report(False, f"get-item: last item seen (value, seq, signature verifies): {last[0]!r}")
        return done

    def put_item(self, seed, salt, value):
        asker = self.asker
        pk = public_key(seed)
        secret = expanded_secret(seed)

        class Step:
            def query(self):
                asker.dht_put_mutable_item(secret, pk, value, salt)

            def handle(self, alerts):
                for alert in alerts:
                    if isinstance(alert, lt.dht_put_alert) and bytes(alert.public_key) == pk \
                            and alert.num_success > 0:
                        print(f"SEQ {alert.seq}", flush=True)
                        return report(True, f"put-item stored seq={alert.seq} on {alert.num_success} nodes "
                                            f"pk={pk.hex()}")
                return None

        done = self.run_until(Step(), every=10)
        if done is None:
            return report(False, "put-item: no node acknowledged the put")
        return done

    def command(self, words):
        try:
            if len(words) == 3 and words[0] == "find-peers" and len(words[1]) == 40:
                return self.find_peers(words[1].lower(), int(words[2]))
            if len(words) == 5 and words[0] == "get-item":
                return self.get_item(bytes.fromhex(words[1]), salt_bytes(words[2]), bytes.fromhex(words[3]),
                                     int(words[4]))
            if len(words) == 4 and words[0] == "put-item":
                return self.put_item(bytes.fromhex(words[1]), salt_bytes(words[2]), bytes.fromhex(words[3]))
        except ValueError as err:
            return report(False, f"bad command {' '.join(words)!r}: {err}")
        return report(False, f"unknown command {' '.join(words)!r}")


def salt_bytes(word):
    return b"" if word == "-" else bytes.fromhex(word)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--lifetime", type=float, default=300)
    parser.add_argument("--command-timeout", type=float, default=60)
    args = parser.parse_args()
    if args.nodes < 2:
        return report(False, "a testnet needs at least 2 nodes")
    sessions, ports, sizes = dht_testnet(args.nodes)
    if min(sizes) < 1:
        return report(False, f"the libtorrent DHT nodes did not find each other: routing tables {sizes}")
    print("READY " + " ".join(f"{HOST}:{p}" for p in ports), flush=True)
    net = Testnet(sessions, args.lifetime, args.command_timeout)
    while net.alive():
        net.pump()
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if not readable:
            continue
        line = sys.stdin.readline()
        if not line:
            return 0
        if line.split():
            net.command(line.split())
    return 0


if __name__ == "__main__":
    sys.exit(main())
