"""Ready-made tasks. Importing this package registers them."""

from conveyor.catalog import fanout, webhook

__all__ = ["fanout", "webhook"]
