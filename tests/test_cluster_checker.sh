#!/bin/bash
# tests/test_cluster_checker.sh — the cluster tests' history checker rejects what it must
# (tests/cluster/check_history.py --self-test: crafted good and bad histories: a value nobody
# wrote, a stale read, not-found after an acknowledged put, a read from the future, a refused
# put seen, a version mismatch, a failed final read, a read older than a tombstone), so a
# passing cluster test means something. No root, no network. Exits 77 without python3.
# test-timeout: 30
set -u
cd "$(dirname "$0")/.." || exit 1
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
python3 tests/cluster/check_history.py --self-test
