#!/usr/bin/env bash
# Submit a factory command to a running Ray cluster with `ray job submit`.
#   export RAY_ADDRESS=http://127.0.0.1:8265
#   cluster/submit.sh video --input s3://bucket/channels.txt --out s3://bucket/video-v1 --workers 2:32 --resume
#   cluster/submit.sh render --models s3://bucket/mmd --out s3://bucket/render-v1 --render-workers 1:16
# Token auth: `ray start` wrote the token to ~/.ray/auth_token (or set
# RAY_AUTH_TOKEN_PATH); RAY_AUTH_MODE=token makes the CLI send it.
# The upload is the repo minus .gitignore'd files and the excludes below.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=token
[ $# -ge 1 ] || { echo "usage: cluster/submit.sh COMMAND [FLAGS...]  (any 'factory' command)" >&2; exit 2; }
exec ray job submit --working-dir . \
  --runtime-env-json '{"excludes": [".venv", ".git", "demo-out", "bench-out", "**/__pycache__"]}' \
  -- python -m factory "$@"
