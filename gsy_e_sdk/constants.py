"""Public constants of the SDK (SDK_API.md 1), kept at the values scripts expect."""

# Defined in the protocol layer, which the local exchange and the fleet share; public here too.
from gsy_e_sdk.wire.redis_connection import LISTENER_WAIT_TIMEOUT  # noqa: F401
from gsy_e_sdk.wire.redis_url import LOCAL_REDIS_URL  # noqa: F401
from gsy_e_sdk.wire.retry import HTTP_RETRY_AFTER_MAX_SECS  # noqa: F401

MAX_WORKER_THREADS = 5
SETUP_FILE_PATH = None
DEFAULT_DOMAIN_NAME = "https://d3aweb.gridsingularity.com"
DEFAULT_WEBSOCKET_DOMAIN = "wss://d3aweb.gridsingularity.com/external-ws"
API_CLIENT_SIMULATION_ID = ""
CUSTOMER_WEBSOCKET_DOMAIN_NAME = "ws://localhost:4000"
MIN_SLOT_COMPLETION_TICK_TRIGGER_PERCENTAGE = 10

# Waits of the original SDK (REDIS.md 8.1), in seconds.
REGISTER_TIMEOUT = 120
AGGREGATOR_COMMAND_TIMEOUT = 10
BATCH_COMMAND_TIMEOUT = 10
DIRECT_COMMAND_TIMEOUT = 120  # forecasts, grid fees ... on an area's own channels, as over REST

# REST + websockets (REST.md, SDK_API.md 5) ---------------------------------------------------
REST_REGISTER_TIMEOUT = 900  # register/unregister responses on the websocket
REST_COMMAND_TIMEOUT = 120  # every other websocket command response (batch, forecast, fees)
# Lifetime the hosted platform gives its JWTs; without an ``exp`` claim we refresh at a quarter
# of it (every 12 h, REST.md 1.3), with one at three quarters of the claimed lifetime.
JWT_TOKEN_EXPIRY_IN_SECS = 172800
JWT_FALLBACK_REFRESH_SECS = JWT_TOKEN_EXPIRY_IN_SECS / 4
JWT_REFRESH_FRACTION = 0.75
JWT_MIN_REFRESH_SECS = 1.0
# HTTP: (connect, read) timeouts; how HTTP and websockets retry is gsy_e_sdk/wire/retry.py's.
HTTP_CONNECT_TIMEOUT_SECS = 5.0
HTTP_READ_TIMEOUT_SECS = 30.0
HTTP_POOL_SIZE = 16
WEBSOCKET_CONNECT_WAIT_SECS = 30.0  # how long a lazily opened socket is waited for
