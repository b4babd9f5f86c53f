#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the demo on generated sample data in ./demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/demo.py "${1:-demo}"
