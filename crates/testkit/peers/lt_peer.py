#!/usr/bin/python3
"""libtorrent as an independent BitTorrent peer for kolokol's tests, on 127.0.0.1 only.

  lt_peer.py make-torrent FILE OUT [--piece-kib 256]
      libtorrent's own torrent creator (v1, no tracker). Prints `INFOHASH <40 hex>`.
  lt_peer.py torrent-info T
      Reads T with libtorrent's parser. Prints `INFOHASH <40 hex>`, `NAME <name>`, `CREATOR <text>`,
      `COMMENT <text>`, `CREATION_DATE <unix or 0>`, `TRACKERS <count>`, then `FILE <size> <path>` per file.
  lt_peer.py seed --torrent T --save DIR --port P [--lifetime 120] [--tcp-only] [--dht-bootstrap H:P,...]
      Seeds T from DIR. Prints `LISTENING 127.0.0.1:P` once it accepts peers; exits after --lifetime seconds.
  lt_peer.py leech (--torrent T | --magnet M) --save DIR --port P [--peer H:P]... [--dht-bootstrap H:P,...]
                   [--timeout 120] [--tcp-only] [--verify FILE]
      Downloads until complete or --timeout. Prints `METADATA ...` when a magnet's info dictionary arrives
      (BEP 9), then `PASS: ... seconds=S` (S: from adding the torrent to the last piece verified) or `FAIL: ...`;
      exit status 0 only on PASS. --verify also compares the downloaded file's bytes with FILE.

Nothing here talks beyond 127.0.0.1: see loopback.py. Every command ends by itself (--lifetime / --timeout).
"""
import argparse
import filecmp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopback import HOST, lt, report, session  # noqa: E402


def parse_peer(text):
    host, _, port = text.rpartition(":")
    if host != HOST:
        raise SystemExit(f"FAIL: peer {text} is not on {HOST}")
    return host, int(port)


def make_torrent(args):
    files = lt.file_storage()
    lt.add_files(files, args.file)
    creator = lt.create_torrent(files, args.piece_kib * 1024, flags=lt.create_torrent.v1_only)
    creator.set_creator(f"libtorrent {lt.__version__} (kolokol-testkit)")
    lt.set_piece_hashes(creator, os.path.dirname(os.path.abspath(args.file)))
    encoded = lt.bencode(creator.generate())
    with open(args.out, "wb") as out:
        out.write(encoded)
    info = lt.torrent_info(args.out)
    print(f"INFOHASH {info.info_hashes().v1}", flush=True)
    return 0


def torrent_info(args):
    info = lt.torrent_info(args.torrent)
    print(f"INFOHASH {info.info_hashes().v1}")
    print(f"NAME {info.name()}")
    print(f"CREATOR {info.creator()}")
    print(f"COMMENT {info.comment()}")
    print(f"CREATION_DATE {info.creation_date()}")
    print(f"TRACKERS {len(list(info.trackers()))}")
    files = info.files()
    for index in range(files.num_files()):
        print(f"FILE {files.file_size(index)} {files.file_path(index)}")
    sys.stdout.flush()
    return 0


def add_torrent(sess, args, seeding):
    params = lt.parse_magnet_uri(args.magnet) if args.magnet else lt.add_torrent_params()
    if not args.magnet:
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    if seeding:
        # the content is the file the torrent was made from: skip the full hash check
        params.flags |= lt.torrent_flags.seed_mode
    return sess.add_torrent(params)


def seed(args):
    if not args.torrent:
        return report(False, "seed needs --torrent")
    sess = session(args.port, dht_bootstrap=args.dht_bootstrap, tcp_only=args.tcp_only)
    handle = add_torrent(sess, args, seeding=True)
    print(f"LISTENING {HOST}:{sess.listen_port()}", flush=True)
    end = time.time() + args.lifetime
    while time.time() < end:
        for alert in sess.pop_alerts():
            if isinstance(alert, (lt.torrent_error_alert, lt.file_error_alert)):
                print(f"ERROR {alert.message()}", flush=True)
        time.sleep(0.1)
    print(f"EXIT uploaded={handle.status().total_payload_upload}", flush=True)
    return 0


def leech(args):
    if bool(args.torrent) == bool(args.magnet):
        return report(False, "leech needs exactly one of --torrent and --magnet")
    peers = [parse_peer(p) for p in args.peer]
    sess = session(args.port, dht_bootstrap=args.dht_bootstrap, tcp_only=args.tcp_only)
    handle = add_torrent(sess, args, seeding=False)
    started = time.time()
    end = started + args.timeout
    last_knock = 0.0
    status = handle.status()
    while time.time() < end and not status.is_seeding:
        for alert in sess.pop_alerts():
            if isinstance(alert, lt.metadata_received_alert):
                print(f"METADATA received after {time.time() - started:.2f}s (BEP 9)", flush=True)
            elif isinstance(alert, (lt.torrent_error_alert, lt.file_error_alert)):
                print(f"ERROR {alert.message()}", flush=True)
        # The peer may start after us or drop us: knock again every 2 s while nobody is connected.
        if peers and status.num_peers == 0 and time.time() - last_knock > 2:
            for peer in peers:
                handle.connect_peer(peer)
            last_knock = time.time()
        time.sleep(0.02)
        status = handle.status()
    seconds = time.time() - started
    if not status.is_seeding:
        return report(False, f"incomplete after {seconds:.1f}s: {status.progress * 100:.1f}%, "
                             f"{status.num_peers} peers")
    info = handle.torrent_file()
    if args.verify:
        got = os.path.join(args.save, info.files().file_path(0))
        if not filecmp.cmp(got, args.verify, shallow=False):
            return report(False, f"{got} differs from {args.verify}")
    return report(True, f"downloaded {info.total_size()} bytes seconds={seconds:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("make-torrent")
    made.add_argument("file")
    made.add_argument("out")
    made.add_argument("--piece-kib", type=int, default=256)
    read = commands.add_parser("torrent-info")
    read.add_argument("torrent")
    for name in ("seed", "leech"):
        peer = commands.add_parser(name)
        peer.add_argument("--torrent")
        peer.add_argument("--magnet")
        peer.add_argument("--save", required=True)
        peer.add_argument("--port", type=int, required=True)
        peer.add_argument("--peer", action="append", default=[])
        peer.add_argument("--dht-bootstrap", default=None, help="private testnet nodes, H:P,H:P")
        peer.add_argument("--tcp-only", action="store_true", help="no uTP (slow on loopback)")
        peer.add_argument("--lifetime", type=float, default=120)
        peer.add_argument("--timeout", type=float, default=120)
        peer.add_argument("--verify")
    args = parser.parse_args()
    return {"make-torrent": make_torrent, "torrent-info": torrent_info, "seed": seed, "leech": leech}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
