"""Names user scripts import from ``gsy_framework``, provided here so we need no such dependency.

Scripts written for the original SDK import these from ``gsy_framework.utils`` and
``gsy_framework.constants_limits`` (SDK_API.md 1); the ``gsy_framework`` shim package of this
distribution re-exports them, so such scripts run unchanged.
"""

from typing import Any

from gsy_e_sdk.wire.times import SLOT_FORMAT

# Pendulum token formats, as in gsy_framework (for ``pendulum.DateTime.format``).
DATE_TIME_FORMAT = "YYYY-MM-DDTHH:mm"
TIME_FORMAT_SECONDS = "HH:mm:ss"
# The same two formats for ``datetime.strftime``.
DATE_TIME_STRFTIME_FORMAT = SLOT_FORMAT
TIME_STRFTIME_FORMAT_SECONDS = "%H:%M:%S"


def key_in_dict_and_not_none(d: dict[str, Any], key: str) -> bool:
    return key in d and d[key] is not None


def key_in_dict_and_not_none_and_greater_than_zero(d: dict[str, Any], key: str) -> bool:
    return key in d and d[key] is not None and d[key] > 0
