#!/usr/bin/env bash
# Fuzzes the frame decoder for a bounded time. Not run in CI.
#
#   ./run.sh [seconds] [engine]      seconds: default 60
#                                    engine:  auto (default), libfuzzer or stable
#
# libfuzzer: cargo-fuzz with coverage feedback; needs a nightly toolchain and cargo-fuzz
#            (rustup toolchain install nightly && cargo install cargo-fuzz).
# stable:    driver/, a mutation driver without coverage instrumentation; any toolchain.
# auto:      libfuzzer when nightly and cargo-fuzz are installed, stable otherwise.
#
# Both start from corpus/frame_decoder (kept in git, read-only here) and past crashes in
# regressions/frame_decoder; new crashing inputs are written to regressions/frame_decoder, where
# tests/codec_props.rs replays them in CI. libFuzzer's growing corpus goes to work/ (ignored).
set -euo pipefail
seconds="${1:-60}"
engine="${2:-auto}"
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"

if [[ "$engine" == auto ]]; then
    if cargo +nightly --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1; then
        engine=libfuzzer
    else
        engine=stable
    fi
fi

mkdir -p "$fuzz_dir/regressions/frame_decoder"
case "$engine" in
    libfuzzer)
        mkdir -p "$fuzz_dir/work/frame_decoder"
        cd "$fuzz_dir/.."
        exec cargo +nightly fuzz run frame_decoder \
            fuzz/work/frame_decoder fuzz/corpus/frame_decoder fuzz/regressions/frame_decoder \
            -- -max_total_time="$seconds" -timeout=10 -max_len=16384 \
            -artifact_prefix="$fuzz_dir/regressions/frame_decoder/" -print_final_stats=1
        ;;
    stable)
        cd "$fuzz_dir"
        exec cargo run --quiet --release -p actor-remote-fuzz-driver -- --seconds "$seconds"
        ;;
    *)
        echo "unknown engine $engine (auto, libfuzzer or stable)" >&2
        exit 2
        ;;
esac
