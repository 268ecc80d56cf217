#!/usr/bin/env sh
# Start Flower with basic auth from CONVEYOR_FLOWER_USER / CONVEYOR_FLOWER_PASSWORD (required).
set -eu
exec conveyor flower "$@"
