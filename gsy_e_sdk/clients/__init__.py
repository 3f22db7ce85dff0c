"""Asset and market clients: their logic (``area_client``) and its Redis and REST bindings."""
