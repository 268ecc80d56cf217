#!/usr/bin/env sh
# Start a worker: QUEUES (comma-separated, default all) and CONCURRENCY from the environment.
set -eu
exec conveyor worker ${QUEUES:+-Q "$QUEUES"} ${CONCURRENCY:+-c "$CONCURRENCY"} "$@"
