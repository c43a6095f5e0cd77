#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian machine: install what the tests need, then run every test.
#   ./scripts/test.sh            (as root, or with sudo available, for the apt-get step)
# The interoperability tests drive real, independent BitTorrent clients: Debian's libtorrent (python3-libtorrent,
# run with /usr/bin/python3) and aria2, through the repository's own drivers in crates/testkit/peers. They use
# 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need_packages+=(python3-libtorrent)
command -v aria2c >/dev/null 2>&1 || need_packages+=(aria2)
# The BEP 44 interop test re-checks libtorrent's Ed25519 signatures with an independent implementation.
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || need_packages+=(python3-cryptography)
# LAN discovery tests make network namespaces (unshare, ip).
command -v ip >/dev/null 2>&1 || need_packages+=(iproute2)
command -v unshare >/dev/null 2>&1 || need_packages+=(util-linux)
# Proxy tests fetch pages with curl through the proxy; the censor test in network namespaces uses iptables.
command -v curl >/dev/null 2>&1 || need_packages+=(curl)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need_packages+=(iptables)
# The censor-rule tests serve and check TLS with openssl (s_server, a self-signed certificate).
command -v openssl >/dev/null 2>&1 || need_packages+=(openssl)
# The web UI tests drive Debian's headless Chromium through chromedriver and make their test video with ffmpeg.
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_packages+=(chromium-driver)
command -v ffmpeg >/dev/null 2>&1 || need_packages+=(ffmpeg)
# The scrub test checks that a PDF with its metadata blanked is still a valid PDF.
command -v qpdf >/dev/null 2>&1 || need_packages+=(qpdf)
if [ ${#need_packages[@]} -gt 0 ]; then
    echo "installing ${need_packages[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${need_packages[@]}"
fi

# Disk is what a fresh machine runs out of first (test binaries, then the instrumented fuzz build): say how much there is.
df -h . | sed 's/^/disk: /'
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
    # nextest does not run doctests
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast "$@"
fi
df -h . | sed 's/^/disk after the tests: /'
# Every decoder of outside bytes under libFuzzer, FUZZ_SECONDS each (default 30; 0 skips): see docs/fuzzing.md.
./scripts/fuzz.sh
