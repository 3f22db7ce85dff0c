"""Connection URLs as they may be shown: a password in a URL never reaches a log, a terminal or argv."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"


def redact_url(url: str | None) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://:***@host:6379/0``; anything unparsable -> a placeholder.

    Keeps the user name (useful when reading logs) and hides only the password; a string that is
    not a URL is returned whole only when it cannot carry credentials (no ``@``).
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "<unparsable url>"
    if "@" not in netloc:
        return url if "@" not in url else "<unparsable url>"
    userinfo, host = netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    shown = f"{user}:{HIDDEN}" if has_password else user
    return urlunsplit((parts.scheme, f"{shown}@{host}", parts.path, parts.query, parts.fragment))
