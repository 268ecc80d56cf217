"""Tests of examples/mentorhub (seed 004) on PostgreSQL."""
