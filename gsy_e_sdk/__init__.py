"""Wire-compatible client SDK for GSy Exchange."""

__version__ = "1.3.0"
