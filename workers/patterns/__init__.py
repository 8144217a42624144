"""The patterns pool."""
