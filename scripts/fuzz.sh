#!/usr/bin/env bash
# Fuzz every decoder of outside bytes for a bounded time (see docs/fuzzing.md).
#   ./scripts/fuzz.sh                          every target, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=600 ./scripts/fuzz.sh record  some targets, longer (FUZZ_SECONDS=0 skips fuzzing)
# Installs what it needs on a fresh Debian machine (as root, or with sudo for apt-get): a C++ compiler for
# libFuzzer and cargo-fuzz. Builds fuzz/ with libFuzzer, AddressSanitizer and coverage instrumentation into
# fuzz/target, runs each target on its committed seed corpus (fuzz/corpus/<target>, never written to: new inputs go
# to fuzz/target/corpus/<target>) and exits non-zero if any target crashed, printing the crashing inputs
# (fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
cargo_fuzz_version=0.13.2
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "FUZZ_SECONDS must be a whole number of seconds, got '$seconds'" >&2
    exit 2
fi
if [ "$seconds" -eq 0 ]; then
    # libFuzzer would read 0 as "no time limit".
    echo "FUZZ_SECONDS=0: fuzzing skipped"
    exit 0
fi

# cargo-fuzz passes nightly-only compiler flags (-Zsanitizer=address and a few others). RUSTC_BOOTSTRAP=1 makes the
# stable compiler accept them, so CI needs no nightly toolchain; the coverage instrumentation itself
# (-Cpasses=sancov-module) is a stable flag. The variable is set for this script only.
export RUSTC_BOOTSTRAP=1

if ! command -v c++ >/dev/null 2>&1; then
    echo "installing g++ (libfuzzer-sys compiles libFuzzer)"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q g++
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
cargo fuzz build
echo "fuzz build took $(($(date +%s) - start)) s"
df -h . | sed 's/^/disk after the fuzz build: /'

failed=()
# Only inputs written by this run are reported; older ones in fuzz/artifacts stay where they are.
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT
for target in "${targets[@]}"; do
    work="fuzz/target/corpus/$target"
    mkdir -p "$work" "fuzz/artifacts/$target"
    echo "=== fuzzing $target for ${seconds} s"
    # -timeout: an input that takes 10 s is a hang, reported like a crash. The first corpus directory receives the
    # new inputs; the committed seeds are only read.
    if ! cargo fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

echo "fuzzing took $(($(date +%s) - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FUZZING FOUND CRASHES in: ${failed[*]}"
    for target in "${failed[@]}"; do
        find "fuzz/artifacts/$target" -type f -newer "$marker" | while read -r input; do
            echo "  crashing input: $input"
            echo "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $target $input"
        done
    done
    exit 1
fi
echo "no crashes in ${#targets[@]} targets"
