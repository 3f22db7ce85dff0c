"""Celery workers of the fleet: ``celery -A workers worker -Q shard-0,shard-1``.

``-A workers`` finds the application as ``workers.app``; tasks live in ``workers.tasks``.
"""

from orchestrator.celery_app import app

__all__ = ["app"]
