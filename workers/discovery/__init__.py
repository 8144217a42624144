"""The discovery pool."""
