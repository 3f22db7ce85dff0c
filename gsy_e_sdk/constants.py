"""Public constants of the SDK (SDK_API.md 1), kept at the values scripts expect."""

# Defined with the Redis connection, which the local exchange's facade shares; public here too.
from gsy_e_sdk.wire.redis_connection import LISTENER_WAIT_TIMEOUT, LOCAL_REDIS_URL  # noqa: F401

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
# HTTP: (connect, read) timeouts and bounded retries with jittered exponential backoff.
HTTP_CONNECT_TIMEOUT_SECS = 5.0
HTTP_READ_TIMEOUT_SECS = 30.0
HTTP_RETRIES = 6
HTTP_READ_RETRIES = 2
HTTP_BACKOFF_FACTOR = 0.5
HTTP_BACKOFF_MAX_SECS = 30.0
HTTP_BACKOFF_JITTER_SECS = 0.5
HTTP_RETRY_AFTER_MAX_SECS = 120.0
HTTP_RETRY_STATUSES = (429, 500, 502, 503, 504)
HTTP_POOL_SIZE = 16
# Websockets: reconnect forever, 0.5 s doubling up to 30 s (jittered); a connection that lived
# longer than 30 s counts as healthy and resets the backoff.
WEBSOCKET_BACKOFF_MIN_SECS = 0.5
WEBSOCKET_BACKOFF_MAX_SECS = 30.0
WEBSOCKET_HEALTHY_AFTER_SECS = 30.0
WEBSOCKET_CONNECT_WAIT_SECS = 30.0  # how long a lazily opened socket is waited for
