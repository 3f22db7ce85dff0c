"""Market-name slugs used as Redis channel prefixes (REDIS.md 1.2)."""

import re
import unicodedata

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """Slug a market name the way the exchange and the original SDK do.

    Apostrophes are removed, the text is folded to ASCII, lower-cased, split at every run of
    characters that are not letters or digits, and joined with ``-``.
    """
    text = name.replace("'", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "-".join(piece for piece in _SEPARATORS.split(text.lower()) if piece)
