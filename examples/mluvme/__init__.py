"""Mluv.Me, the language-learning Telegram bot of seeds 000-002, rebuilt on conveyor."""
