"""The API's routers, one module per resource; :func:`verticals.api.app.create_app` includes them."""
