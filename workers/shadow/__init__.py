"""The shadow pool."""
