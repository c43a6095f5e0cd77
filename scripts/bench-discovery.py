#!/usr/bin/env python3
"""Discovery benchmark (not a test): a private 30-node kolokol network on loopback, real `kolokol up` processes.

  cargo build --release && scripts/bench-discovery.py [--nodes 30] [--kolokol target/release/kolokol]

Prints, for N nodes each given only one bootstrap address (a first node's DHT address):
  - time from a node's start to its first connected kolokol peer (median, p95);
  - time for a new publication made on node 1 to reach every node's catalog;
  - the median DHT lookup time, from kolokol-discovery's own benchmark (30 DHT nodes, same settings).
Everything binds 127.0.0.1; public DHT routers and LAN multicast are off. Temporary data is removed at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def api(node, path):
    """A read of the node's API, with its token (reads need it as writes do)."""
    req = urllib.request.Request(f"http://{node['api']}/api/v1/{path}",
                                 headers={"x-kolokol-token": node["token"]})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def start(kolokol, data, extra):
    os.makedirs(data, exist_ok=True)
    log = open(os.path.join(data, "..", os.path.basename(data) + ".log"), "w")
    p = subprocess.Popen(
        [kolokol, "--data-dir", data, "--api", "127.0.0.1:0", "up",
         "--listen", "127.0.0.1:0", "--wire", "127.0.0.1:0", "--dht", "127.0.0.1:0",
         "--no-default-bootstrap", "--no-lan"] + extra,
        stdout=subprocess.PIPE, stderr=log, text=True)
    t0 = time.monotonic()
    for line in p.stdout:
        if line.strip().startswith("web:"):
            addr = line.split("http://")[1].strip().rstrip("/")
            token = open(os.path.join(data, "api.token")).read().strip()
            return p, {"api": addr, "token": token}, t0
    raise RuntimeError(f"node in {data} did not start")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=30)
    ap.add_argument("--kolokol", default=os.path.join(ROOT, "target", "release", "kolokol"))
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    if not os.path.exists(a.kolokol):
        sys.exit(f"{a.kolokol} not found: run `cargo build --release` first")
    tmp = tempfile.mkdtemp(prefix="kolokol-bench-")
    procs = []
    try:
        boot, boot_api, _ = start(a.kolokol, os.path.join(tmp, "boot"), [])
        procs.append(boot)
        boot_dht = api(boot_api, "status")["dht_addr"]
        nodes = []
        for i in range(a.nodes):
            p, node, t0 = start(a.kolokol, os.path.join(tmp, f"n{i}"), ["--bootstrap", boot_dht])
            procs.append(p)
            nodes.append(dict(node, t0=t0, first_peer=None))
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline and any(n["first_peer"] is None for n in nodes):
            for n in nodes:
                if n["first_peer"] is None and api(n, "status")["peers_connected"] > 0:
                    n["first_peer"] = time.monotonic() - n["t0"]
            time.sleep(0.05)
        firsts = [n["first_peer"] for n in nodes if n["first_peer"] is not None]
        print(f"nodes: {a.nodes} (+1 bootstrap), each given one bootstrap address, loopback, default flags")
        print(f"start to first kolokol peer: median {statistics.median(firsts):.2f} s, "
              f"p95 {pct(firsts, 0.95):.2f} s ({len(firsts)}/{a.nodes} nodes connected)")

        data = os.path.join(tmp, "pub.bin")
        with open(data, "wb") as f:
            f.write(os.urandom(1 << 20))
        req = urllib.request.Request(
            f"http://{nodes[0]['api']}/api/v1/publish",
            data=json.dumps({"paths": [data], "title": "bench"}).encode(),
            headers={"content-type": "application/json", "x-kolokol-token": nodes[0]["token"]})
        t_pub = time.monotonic()
        rid = json.load(urllib.request.urlopen(req, timeout=30))["id"]
        published = time.monotonic()
        pending = set(range(a.nodes))
        reach = {}
        while pending and time.monotonic() < published + a.timeout:
            for i in list(pending):
                if any(r["id"] == rid for r in api(nodes[i], "records?limit=10")):
                    reach[i] = time.monotonic() - published
                    pending.discard(i)
            time.sleep(0.02)
        print(f"publish call (copy, hash, sign, store): {published - t_pub:.2f} s")
        if pending:
            print(f"publication reached {len(reach)}/{a.nodes} catalogs; missing after {a.timeout} s")
        else:
            print(f"publication reached all {a.nodes} catalogs in {max(reach.values()):.2f} s "
                  f"(median node {statistics.median(reach.values()):.2f} s)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    print("DHT lookups (kolokol-discovery-bench, 30 DHT nodes):", flush=True)
    subprocess.run(["cargo", "run", "--release", "-q", "-p", "kolokol-discovery", "--bin",
                    "kolokol-discovery-bench"], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
