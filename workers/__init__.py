"""Celery workers of the fleet: ``celery -A workers worker -Q shard-0,shard-1``.

``-A workers`` finds the application as ``workers.app``, built on first use
(``orchestrator.celery_app.default_app``), so importing this package (the strategies live in it)
loads no Celery. Tasks live in ``workers.tasks``.

``celery -A workers flower`` is Flower's own command, which knows nothing of the fleet's
``GSY_FLOWER_BASIC_AUTH``: left alone it would serve every task's arguments to anybody. It reads
its settings from ``FLOWER_*`` variables after loading this app, so under that command the
fleet's credentials are handed over here, and it refuses to start without any, as
``gsy-e-sdk flower`` does.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(f"module 'workers' has no attribute {name!r}")
    from orchestrator.celery_app import default_app  # noqa: PLC0415 - Celery only for who asks for the app

    _guard_plain_flower(sys.argv)
    return default_app()


def _guard_plain_flower(argv: list[str]) -> None:
    under_celery = bool(argv) and (
        os.path.basename(argv[0]) == "celery" or argv[0].endswith(os.path.join("celery", "__main__.py"))
    )
    if not under_celery or "flower" not in argv[1:] or any(arg.startswith(("--basic-auth", "--auth")) for arg in argv):
        return
    from orchestrator.flower_auth import FlowerAuthError, basic_auth_from_env  # noqa: PLC0415 - only under flower

    try:
        found = basic_auth_from_env(os.environ)
    except FlowerAuthError as exc:
        sys.exit(f"Error: {exc.message}")
    if found is None:
        sys.exit(
            "Error: Flower shows every task's arguments; set GSY_FLOWER_BASIC_AUTH=user:password "
            "(or GSY_FLOWER_BASIC_AUTH_FILE), or use `gsy-e-sdk flower --no-auth` on a trusted network"
        )
    os.environ["FLOWER_BASIC_AUTH"] = ",".join(found[1])
