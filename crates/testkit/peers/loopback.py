"""Loopback-only libtorrent sessions for kolokol's tests (imported by the other drivers in this folder).

Why every setting is here, passed to lt.session() at construction: a session made with defaults listens on
0.0.0.0:6881 at once and starts the public DHT (bootstrapping from dht.libtorrent.org), UPnP, NAT-PMP and local
service discovery. Applying settings afterwards is too late: the packets are already out. So a driver never
calls lt.session() itself; it calls `session()` below, which binds 127.0.0.1 and switches all of that off.

Runs with Debian's python3-libtorrent (2.0.x) under /usr/bin/python3.
"""
import socket
import sys
import time

try:
    import libtorrent as lt
except ImportError:
    print("FAIL: cannot import libtorrent: apt-get install python3-libtorrent, run with /usr/bin/python3",
          flush=True)
    sys.exit(2)

HOST = "127.0.0.1"


def report(ok, text):
    """The last line a driver prints: `PASS: ...` or `FAIL: ...`; returns the exit status."""
    print(("PASS: " if ok else "FAIL: ") + text, flush=True)
    return 0 if ok else 1


def free_port():
    """A port on 127.0.0.1 that is free for TCP and for UDP (libtorrent binds both on its listen port)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both TCP and UDP on 127.0.0.1")


def settings(port, dht_bootstrap=None, tcp_only=False):
    """A settings dict for lt.session(): 127.0.0.1 only; the DHT only when `dht_bootstrap` names the private
    testnet to join ("" for a testnet's first nodes), never the public bootstrap nodes."""
    alerts = lt.alert.category_t
    mask = (alerts.error_notification | alerts.status_notification | alerts.storage_notification
            | alerts.peer_notification | alerts.dht_notification)
    # The get_peers / mutable item / put replies come under this category (absent from very old bindings).
    mask |= getattr(alerts, "dht_operation_notification", 0)
    use_dht = dht_bootstrap is not None
    return {
        "listen_interfaces": f"{HOST}:{port}",
        "outgoing_interfaces": HOST,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_lsd": False,
        "enable_dht": use_dht,
        # the default list is the public router dht.libtorrent.org: never let it be used
        "dht_bootstrap_nodes": dht_bootstrap or "",
        "enable_incoming_utp": not tcp_only,
        "enable_outgoing_utp": not tcp_only,
        # Every peer in a test has the address 127.0.0.1; libtorrent otherwise keeps one connection per IP.
        "allow_multiple_connections_per_ip": True,
        # ... and its DHT otherwise admits one node per IP (and per /24) and drops node ids not derived from
        # the IP, which on a one-address testnet leaves each routing table nearly empty.
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        # All the testnet's queries come from one IP: without this the per-IP limit silences it.
        "dht_block_ratelimit": 1_000_000,
        "dht_block_timeout": 1,
        # The default waits minutes between announces; a test wants the first one soon after starting.
        "min_announce_interval": 2,
        "dht_announce_interval": 5,
        # Loopback moves data at memory speed: libtorrent's defaults (sized for the internet) would hold the
        # reference back, and the benchmark compares kolokol with it. Deeper send buffers and request queues, as in
        # libtorrent's own high_performance_seed preset, and big socket buffers (with the default ones uTP drops
        # packets on loopback and crawls at a few MB/s).
        "send_buffer_watermark": 8 << 20,
        "send_buffer_low_watermark": 1 << 20,
        "send_buffer_watermark_factor": 150,
        "max_queued_disk_bytes": 16 << 20,
        "max_out_request_queue": 1500,
        "max_allowed_in_request_queue": 2000,
        "request_queue_time": 5,
        "aio_threads": 4,
        "checking_mem_usage": 2048,
        "send_socket_buffer_size": 8 << 20,
        "recv_socket_buffer_size": 8 << 20,
        "alert_mask": mask,
        "user_agent": f"kolokol-testkit/libtorrent-{lt.__version__}",
    }


def session(port, dht_bootstrap=None, tcp_only=False, extra=None):
    """A session bound to 127.0.0.1:`port`, waiting (up to 10 s) until it listens; `extra` overrides settings."""
    for node in (dht_bootstrap or "").split(","):
        if node and node.rpartition(":")[0] != HOST:
            raise ValueError(f"DHT bootstrap node {node} is not on {HOST}")
    pack = settings(port, dht_bootstrap=dht_bootstrap, tcp_only=tcp_only)
    pack.update(extra or {})
    sess = lt.session(pack)
    deadline = time.time() + 10
    while time.time() < deadline:
        for alert in sess.pop_alerts():
            if isinstance(alert, lt.listen_failed_alert):
                raise RuntimeError(f"libtorrent cannot listen on {HOST}:{port}: {alert.message()}")
            if isinstance(alert, lt.listen_succeeded_alert):
                return sess
        time.sleep(0.05)
    if sess.listen_port() == 0:
        raise RuntimeError(f"libtorrent did not start listening on {HOST}:{port}")
    return sess


def dht_routing_size(sess):
    try:
        return sess.status().dht_nodes
    except Exception:  # the field is deprecated; a binding without it counts as empty
        return 0


def dht_testnet(count, settle_seconds=30, min_neighbours=2):
    """`count` libtorrent DHT nodes on 127.0.0.1 that know only each other: every node bootstraps from the
    first two. Waits until each routing table holds `min_neighbours` nodes (or `settle_seconds` pass).
    Returns (sessions, ports, routing-table sizes)."""
    ports = [free_port() for _ in range(count)]
    first_two = ",".join(f"{HOST}:{p}" for p in ports[:2])
    sessions = [session(p, dht_bootstrap=first_two) for p in ports]
    # Nodes started before their bootstrap nodes listened: introduce each to its neighbour as well.
    for i, sess in enumerate(sessions):
        sess.add_dht_node((HOST, ports[(i + 1) % count]))
    need = min(min_neighbours, count - 1)
    deadline = time.time() + settle_seconds
    sizes = [0] * count
    while time.time() < deadline:
        sizes = [dht_routing_size(s) for s in sessions]
        for s in sessions:
            s.pop_alerts()
        if min(sizes) >= need:
            break
        time.sleep(0.2)
    return sessions, ports, sizes
