"""Ready-made tasks. Importing this package registers them."""

from conveyor.catalog import webhook

__all__ = ["webhook"]
