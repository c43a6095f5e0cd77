#!/usr/bin/python3
"""aria2 (aria2c) as an independent BitTorrent client for kolokol's tests, on 127.0.0.1 only.

  aria2_peer.py fetch URI --dir DIR --log FILE [--dht-entry 127.0.0.1:P] [--timeout 120]

Downloads URI (a magnet) into DIR and prints `PASS: ...` (exit 0) or `FAIL: ...`. aria2 writes its log, at info
level, to FILE: tests read it to see how aria2 found its peer. With --dht-entry, aria2 joins that private DHT
(its only way to peers when the magnet names none); without it the DHT stays off.

Loopback only: no configuration file is read, every socket is bound to 127.0.0.1 (--interface), IPv6 and the
IPv6 DHT are off, local peer discovery and peer exchange are off, and the DHT routing table starts empty in a
file beside the log (the default one under ~/.cache may hold public nodes). aria2 stops itself after --timeout
seconds, and this driver kills it shortly after if it has not.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopback import HOST, free_port, report  # noqa: E402  (plain sockets: no libtorrent session is made)


def fetch(args):
    if args.dht_entry and args.dht_entry.rpartition(":")[0] != HOST:
        return report(False, f"DHT entry point {args.dht_entry} is not on {HOST}")
    os.makedirs(args.dir, exist_ok=True)
    command = [
        "aria2c",
        "--no-conf=true",
        f"--dir={args.dir}",
        f"--interface={HOST}",
        "--disable-ipv6=true",
        f"--listen-port={free_port()}",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--bt-save-metadata=false",
        "--seed-time=0",
        "--file-allocation=none",
        "--summary-interval=0",
        f"--stop={int(args.timeout)}",
        f"--log={args.log}",
        "--log-level=info",
    ]
    if args.dht_entry:
        command += [
            "--enable-dht=true",
            "--enable-dht6=false",
            f"--dht-entry-point={args.dht_entry}",
            f"--dht-listen-port={free_port()}",
            f"--dht-file-path={os.path.join(os.path.dirname(os.path.abspath(args.log)), 'aria2-dht.dat')}",
        ]
    else:
        command += ["--enable-dht=false", "--enable-dht6=false"]
    command.append(args.uri)
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=args.timeout + 15)
    except FileNotFoundError:
        return report(False, "aria2c is not installed: apt-get install aria2")
    except subprocess.TimeoutExpired:
        return report(False, f"aria2c did not stop within {args.timeout + 15:.0f}s")
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return report(done.returncode == 0, f"aria2c exited with status {done.returncode}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch")
    get.add_argument("uri")
    get.add_argument("--dir", required=True)
    get.add_argument("--log", required=True)
    get.add_argument("--dht-entry")
    get.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    return fetch(args)


if __name__ == "__main__":
    sys.exit(main())
