"""The protocol version this SDK speaks, sent and compared as ``API-VERSION`` (REST.md 1.1)."""

__version__ = "1.3.0"
