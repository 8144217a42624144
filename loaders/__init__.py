"""Loaders: the repository's real data files into PostgreSQL (``prices``, ``congress``).

Run by the CLI (``quantpipe data ...``), tests and benchmarks; no worker imports them.
"""
