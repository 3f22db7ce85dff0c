"""How the SDK's clients reach an exchange: one small interface (``base``), three transports.

``redis`` (the local exchange's pub/sub channels), ``rest`` (the hosted exchange's HTTP API and
websockets) and ``memory`` (an exchange double for tests). Import the module you need; this
package imports nothing itself, so a REST script never loads the Redis transport.
"""
