"""Tests of examples/microservice (seed 003) on PostgreSQL."""
