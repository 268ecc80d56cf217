"""Tests of examples/mluvme, the language-learning Telegram bot (seeds 000-002)."""
