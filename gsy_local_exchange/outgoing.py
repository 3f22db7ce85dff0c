"""What the exchange publishes: (channel, JSON text) pairs, in publishing order.

The simulation only returns them; the runner (Redis) or a test sends them.
"""

Outgoing = tuple[str, str]
