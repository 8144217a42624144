"""One router per area; each handler is a thin client of a pool's public functions."""
