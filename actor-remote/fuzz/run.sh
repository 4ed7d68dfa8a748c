#!/usr/bin/env bash
# Fuzzes the frame decoder for a bounded time (default 60 s): ./run.sh [seconds]
#
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Not run in CI. The corpus grows under corpus/frame_decoder; crashes land in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p fuzz/corpus/frame_decoder
exec cargo +nightly fuzz run frame_decoder fuzz/corpus/frame_decoder -- -max_total_time="${1:-60}"
