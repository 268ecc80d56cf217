"""Ready-made tasks. Importing this package registers them all.

One module per family: email, telegram, sms, push, webhook, http (messaging and
calls), data and reports (data processing), maintenance and health.
"""

from conveyor.catalog import email, http, push, sms, telegram, webhook

__all__ = ["email", "http", "push", "sms", "telegram", "webhook"]
