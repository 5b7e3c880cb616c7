#!/usr/bin/env bash
# `make run`: builds the collector and runs it on the embedded default — a durable local spool
# under .clickstream/spool, the development write key, no cloud account. Ctrl-C stops it; every
# event it acknowledged stays in the spool.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
LISTEN=${CLICKSTREAM_LISTEN:-127.0.0.1:8080}

echo "run: building the collector (release; the first build takes a few minutes)"
cargo build --release -p collector
cat <<MSG

run: collector on http://$LISTEN — spool in .clickstream/spool, write key 'dev-write-key'
     send an event:
       curl -s -u dev-write-key: -H 'Content-Type: application/json' http://$LISTEN/v1/events \\
         -d '{"event_type":"product_view","anonymous_id":"a-1","product":{"product_id":"p-1","price":19.99,"currency":"EUR"}}'
     health: http://$LISTEN/readyz   metrics: http://$LISTEN/metrics   Ctrl-C to stop

MSG
exec "$TARGET_DIR/release/clickstream-collector" --listen "$LISTEN" --cors-origin '*'
