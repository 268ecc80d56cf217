"""Alembic migrations of the job store (run by ``SqlStore.migrate``)."""
