#!/usr/bin/env sh
# Start the scheduler. Running it on several machines is safe: one holds the leader lease.
set -eu
exec conveyor scheduler "$@"
