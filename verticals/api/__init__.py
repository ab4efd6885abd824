"""The REST API (FastAPI), its auth, webhooks and dashboard.

Importing this package stays light (no FastAPI): ``verticals.api.webhooks`` is
a built-in plugin loaded by every process that finishes jobs. The app itself is
built by :func:`verticals.api.app.create_app`.
"""
