"""Celery workers: the app, routing, the beat schedule and one sub-package per pool."""
