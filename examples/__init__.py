"""Example applications built on conveyor (see conveyor/example.py)."""
