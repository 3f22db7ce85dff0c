"""Runnable example scripts: ``gsy-e-sdk run --setup <module> --run-on-redis``.

Each module's top-level code is the program: it connects, trades and returns when the
exchange reports the end of the simulation. The Redis URL comes from env ``REDIS_URL`` (or
``--redis-url``), defaulting to ``redis://localhost:6379``.
"""
