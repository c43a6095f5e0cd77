#!/usr/bin/env python3
"""libtorrent DHT nodes on 127.0.0.1 for kolokol-dht's interop tests (Debian's python3-libtorrent, run with
/usr/bin/python3), driven over stdin/stdout by crates/dht/tests/interop_libtorrent.rs.

  dht_libtorrent.py --nodes N [--bootstrap 127.0.0.1:P[,...]] [--lifetime 180]

Starts N libtorrent sessions with only the DHT on (no UPnP, NAT-PMP, LSD; every socket on 127.0.0.1). Node 0
bootstraps from --bootstrap (a kolokol node, when the test checks that libtorrent can enter the DHT through
it), the others from node 0. Prints "READY P0 P1 ..." (the nodes' DHT ports) once every node knows at least
one other DHT node (or "FAIL ..." after 30 s), then runs commands, one a line, each on node 0:

  get_peers IH_HEX WANT_PORT SECONDS   get_peers every 2 s until 127.0.0.1:WANT_PORT is among the peers:
                                       "FOUND", else "NOTFOUND <peers seen>" after SECONDS
  announce IH_HEX                      add the infohash as a torrent without metadata, so that node 0 announces
                                       its listen port for it on the DHT (every 5 s): "OK <port>"
  put SEED_HEX PK_HEX SALT_HEX DATA_HEX  BEP 44 put of the byte string DATA (libtorrent bencodes it and signs
                                       with the expanded key of SEED; seq = the one found + 1): "PUT <n nodes>"
  get PK_HEX SALT_HEX WANT_DATA_HEX SECONDS  BEP 44 get until the item's value is the byte string WANT_DATA:
                                       "ITEM <seq>", else "NOITEM <last value seen>"

It exits on end of input or after --lifetime seconds, whichever comes first, so it never outlives its test.
"""
import argparse
import hashlib
import select
import socket
import sys
import tempfile
import time

try:
    import libtorrent as lt
except ImportError:
    print("FAIL cannot import libtorrent: apt-get install python3-libtorrent; run with /usr/bin/python3", flush=True)
    sys.exit(1)


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 (libtorrent binds both)."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            continue
        t.close()
        u.close()
        return port
    raise RuntimeError("no free port")


def settings(port, bootstrap):
    return {
        "listen_interfaces": f"127.0.0.1:{port}",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # every node shares 127.0.0.1: lift libtorrent's one-node-per-IP rules and rate limits
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_enforce_node_id": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 1000000,
        "dht_block_timeout": 1,
        "dht_max_fail_count": 100,
        "dht_announce_interval": 5,
        "alert_mask": (lt.alert.category_t.error_notification
                       | lt.alert.category_t.status_notification
                       | lt.alert.category_t.dht_notification
                       | getattr(lt.alert.category_t, "dht_operation_notification", 0)),
    }


def dht_nodes(sess):
    try:
        return sess.status().dht_nodes
    except Exception:
        return 0


def item_bytes(alert):
    """The value of a dht_mutable_item_alert as bytes (the binding hands back the decoded entry, or a dict of
    key, value, signature, seq and salt)."""
    v = alert.item
    if isinstance(v, dict) and "value" in v:
        v = v["value"]
    if isinstance(v, str):
        return v.encode("latin-1")
    if isinstance(v, bytes):
        return v
    return repr(v).encode()


class Net:
    def __init__(self, sessions, lifetime):
        self.sessions = sessions
        self.end = time.time() + lifetime

    def pump(self):
        """Drains every node's alerts; returns node 0's alerts."""
        out = self.sessions[0].pop_alerts()
        for s in self.sessions[1:]:
            s.pop_alerts()
        return out

    def until(self, seconds):
        end = min(time.time() + seconds, self.end)
        while time.time() < end:
            yield self.pump()
            time.sleep(0.05)


def get_peers(net, ih_hex, want_port, seconds):
    ih = lt.sha1_hash(bytes.fromhex(ih_hex))
    seen = set()
    last = 0
    for alerts in net.until(seconds):
        if time.time() - last > 2:
            net.sessions[0].dht_get_peers(ih)
            last = time.time()
        for a in alerts:
            if isinstance(a, lt.dht_get_peers_reply_alert) and a.info_hash == ih:
                seen.update(a.peers())
        if ("127.0.0.1", want_port) in seen:
            return "FOUND"
    return "NOTFOUND " + " ".join(f"{h}:{p}" for h, p in sorted(seen))


def put(net, seed, pk, salt, data):
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    net.sessions[0].dht_put_mutable_item(bytes(h), pk, data, salt)
    for alerts in net.until(60):
        for a in alerts:
            if isinstance(a, lt.dht_put_alert):
                return f"PUT {a.num_success}"
    return "PUT 0"


def get(net, pk, salt, want, seconds):
    last = 0
    seen = None
    for alerts in net.until(seconds):
        if time.time() - last > 3:
            net.sessions[0].dht_get_mutable_item(pk, salt)
            last = time.time()
        for a in alerts:
            if isinstance(a, lt.dht_mutable_item_alert) and bytes(a.key) == pk:
                seen = item_bytes(a)
                if seen == want:
                    return f"ITEM {a.seq}"
    return f"NOITEM {seen!r}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--bootstrap", default="")
    ap.add_argument("--lifetime", type=float, default=180)
    a = ap.parse_args()

    ports = [free_port() for _ in range(a.nodes)]
    sessions = []
    for i, port in enumerate(ports):
        boot = a.bootstrap if i == 0 else f"127.0.0.1:{ports[0]}"
        sessions.append(lt.session(settings(port, boot)))
    for i, s in enumerate(sessions):
        if i > 0:
            s.add_dht_node(("127.0.0.1", ports[0]))
    for entry in filter(None, a.bootstrap.split(",")):
        host, port = entry.rsplit(":", 1)
        sessions[0].add_dht_node((host, int(port)))
    net = Net(sessions, a.lifetime)
    ready = False
    for _ in net.until(30):
        if all(dht_nodes(s) >= 1 for s in sessions):
            ready = True
            break
    if not ready:
        print(f"FAIL DHT nodes did not join: routing tables {[dht_nodes(s) for s in sessions]}", flush=True)
        return 1
    print("READY " + " ".join(str(p) for p in ports), flush=True)

    while time.time() < net.end:
        net.pump()
        r, _, _ = select.select([sys.stdin], [], [], 0.1)
        if not r:
            continue
        line = sys.stdin.readline()
        if not line:
            return 0
        p = line.split()
        if p[:1] == ["get_peers"] and len(p) == 4:
            print(get_peers(net, p[1], int(p[2]), float(p[3])), flush=True)
        elif p[:1] == ["announce"] and len(p) == 2:
            # The Python binding cannot build dht_announce's flags; a torrent being downloaded is announced.
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(p[1])))
            atp.save_path = tempfile.mkdtemp(prefix="dht_libtorrent-")
            sessions[0].add_torrent(atp)
            print(f"OK {ports[0]}", flush=True)
        elif p[:1] == ["put"] and len(p) == 5:
            print(put(net, bytes.fromhex(p[1]), bytes.fromhex(p[2]), bytes.fromhex(p[3]), bytes.fromhex(p[4])),
                  flush=True)
        elif p[:1] == ["get"] and len(p) == 5:
            print(get(net, bytes.fromhex(p[1]), bytes.fromhex(p[2]), bytes.fromhex(p[3]), float(p[4])), flush=True)
        else:
            print(f"ERROR unknown command {line.strip()!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
