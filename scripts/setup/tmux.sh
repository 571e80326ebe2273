#!/usr/bin/env bash
# tmux for the `meter classify` terminal test (tests/it/classify.rs):
# installed from Debian's packages when missing; nothing to do otherwise.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq tmux >/dev/null
tmux -V
