"""Asset clients (``redis_asset_client``; the REST client follows in a later issue)."""
