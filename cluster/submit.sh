#!/usr/bin/env bash
# Submit the factory's jobs to a running Ray cluster with `ray job submit`.
#   RAY_ADDRESS=http://127.0.0.1:8265 cluster/submit.sh render s3://bucket/models s3://bucket/renders
# Token auth: `ray start` / the cluster wrote the token to ~/.ray/auth_token
# (or set RAY_AUTH_TOKEN_PATH); RAY_AUTH_MODE=token makes the CLI send it.
# The working dir is the repo, minus what .gitignore and the excludes drop.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=token
what=${1:?usage: submit.sh video|render|demo ARGS...}; shift
submit() {
  ray job submit --working-dir . \
    --runtime-env-json '{"excludes": [".venv", ".git", "demo-out", "bench-out", "**/__pycache__"]}' \
    -- python -m factory "$@"
}
case "$what" in
  video)  submit video --input "$1" --out "$2" --workers "${3:-1:8}" --resume ;;
  render) submit render --models "$1" --out "$2" --render-workers "${3:-1:4}" ;;
  demo)   submit demo --out "${1:-$PWD/demo-job}" ;;
  *) echo "unknown job '$what' (video|render|demo)" >&2; exit 2 ;;
esac
