"""Behavioural intelligence ("Shadow Watch") logic of the ingest pool.

Plain modules taking plain inputs (dicts, a Redis client, a SQLAlchemy connection),
so they are testable without Celery: ``events`` (validation, action registry),
``privacy`` (IP/UA reduction), ``stream`` (Redis Stream transport), ``store``
(batched writes, decay), ``profile``, ``trust``, ``cache``, ``licenses``.
"""
