"""The exchange's HTTP + websocket facade (REST.md): JWT login, REST endpoints, websockets.

It plays the hosted web tier: every request is checked and relayed to the exchange over Redis
(REDIS.md), and responses and events come back from Redis to the caller's websocket.
"""
