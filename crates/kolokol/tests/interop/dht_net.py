#!/usr/bin/env python3
"""A private mainline DHT (BEP 5) of libtorrent nodes on 127.0.0.1, driven over stdin/stdout by a test.

  dht_net.py --interop-dir DIR [--nodes 6] [--lifetime 300]

Starts N libtorrent DHT nodes (shared/interop's ltutil: loopback only, per-IP limits off), then prints
  READY 127.0.0.1:P1 127.0.0.1:P2 ...
and answers commands, one a line, on stdin:
  find HEX40 PORT   ask the DHT (get_peers, every 2 s) until a peer 127.0.0.1:PORT is announced for the
                    info-hash, then print "FOUND HEX40 127.0.0.1:PORT"; "PEERS HEX40 ..." shows each reply
It exits when stdin closes or after --lifetime seconds, whichever comes first, so it never outlives its test.
No packet leaves 127.0.0.1: every node binds there and bootstraps only from the others.
"""
import argparse
import os
import select
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interop-dir", required=True)
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--lifetime", type=float, default=300)
    a = ap.parse_args()
    sys.path.insert(0, a.interop_dir)
    import libtorrent as lt
    from ltutil import make_dht_net

    started = time.time()
    # every node needs only two neighbours: joiners bootstrap from the first two nodes, which know them all
    sessions, ports, counts = make_dht_net(a.nodes, wait=30, min_nodes=2)
    if min(counts) < 1:
        print(f"FAIL: libtorrent DHT nodes did not find each other, routing tables {counts}", flush=True)
        return 1
    print("READY " + " ".join(f"127.0.0.1:{p}" for p in ports), flush=True)

    wanted = {}  # info-hash hex -> (sha1_hash, port, last query time)
    asker = sessions[-1]
    while time.time() - started < a.lifetime:
        ready, _, _ = select.select([sys.stdin], [], [], 0.1)
        if ready:
            line = sys.stdin.readline()
            if not line:
                return 0
            parts = line.split()
            if len(parts) == 3 and parts[0] == "find" and len(parts[1]) == 40:
                wanted[parts[1].lower()] = (lt.sha1_hash(bytes.fromhex(parts[1])), int(parts[2]), 0.0)
            else:
                print(f"ERROR unknown command {line.strip()!r}", flush=True)
        now = time.time()
        for hexhash, (ih, port, last) in list(wanted.items()):
            if now - last > 2:
                asker.dht_get_peers(ih)
                wanted[hexhash] = (ih, port, now)
        for alert in asker.pop_alerts():
            if isinstance(alert, lt.dht_get_peers_reply_alert):
                hexhash = str(alert.info_hash)
                if hexhash not in wanted:
                    continue
                peers = alert.peers()
                print(f"PEERS {hexhash} " + " ".join(f"{h}:{p}" for h, p in peers), flush=True)
                port = wanted[hexhash][1]
                if any(p == port for _, p in peers):
                    print(f"FOUND {hexhash} 127.0.0.1:{port}", flush=True)
                    del wanted[hexhash]
        for s in sessions[:-1]:
            s.pop_alerts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
