"""Paths of the hosted exchange's REST and websocket protocol (REST.md 1, 3, 4), written once.

Templates carry ``{sim}``, ``{area}`` and ``{agg}`` placeholders: the facade routes them as they
are (Starlette's syntax), clients fill them with ``str.format``. Trailing slashes matter: these
are the paths exactly as the original SDK builds them. Area commands' own paths are in the
command catalogue (``catalogue.CommandSpec.rest_path``).
"""

TOKEN = "/api-token-auth/"
GRAPHQL = "/graphql/"

SIMULATION = "/external-connection/api/{sim}/"
AREA = SIMULATION + "{area}/"
REGISTER = "register/"
UNREGISTER = "unregister/"
LIVE_GENERATION = "set-live-generation/"
SCM_MEMBER_DATA = "set-scm-timeseries-and-member-data/"
SCM_GLOBAL_DATA = "set-scm-global-data/"  # under SIMULATION, not AREA

AGGREGATOR_API = "/external-connection/aggregator-api/{sim}/"
LIST_AGGREGATORS = "list-aggregators/"
CREATE_AGGREGATOR = "create-aggregator/"
DELETE_AGGREGATOR = "delete-aggregator/"
SELECT_AGGREGATOR = "select-aggregator/"
UNSELECT_AGGREGATOR = "unselect-aggregator/"
BATCH_COMMANDS = "batch-commands/"

CONFIGURATION = "/external-connection/configurations/{sim}/"
REGISTRY = "registry"  # under CONFIGURATION, no trailing slash

WEBSOCKET_ROOT = "/external-ws"  # the websocket domain's path on the facade
WEBSOCKET_AREA = "/{sim}/{area}/"  # under the websocket domain
WEBSOCKET_AGGREGATOR = "/{sim}/aggregator/{agg}/"


def url(base: str, template: str, **values: str) -> str:
    """``base`` (a domain, no trailing slash needed) joined with ``template`` filled with ``values``."""
    return base.rstrip("/") + template.format(**values)
