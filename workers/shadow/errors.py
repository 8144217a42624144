"""The shadow pool's user error (kept in a module of its own so clients import it without the statistics)."""


class ShadowError(ValueError):
    """A user error: unknown model, bad field, refused promotion. The message starts with the field at fault."""
