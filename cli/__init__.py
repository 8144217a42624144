"""The ``quantpipe`` command line (click + rich)."""
