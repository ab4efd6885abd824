"""Moved to :mod:`verticals.core.predict` (the SDK's in-process mode uses it too); re-exported here."""

from verticals.core.predict import TooManyItems, max_items, predict

__all__ = ["TooManyItems", "max_items", "predict"]
