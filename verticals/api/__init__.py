"""The REST API (FastAPI), its auth, tenants, webhooks and dashboard.

- :mod:`verticals.api.app`: ``create_app``, the composition root (state, middleware, error handlers, routers);
- :mod:`verticals.api.deps`: what routes depend on (state, caller, the caller's job, may-run checks);
- :mod:`verticals.api.routes`: one router per resource (ops, discovery, jobs, evals, predict, webhooks);
- :mod:`verticals.api.runner`: the server's job service and executor;
- :mod:`verticals.tenancy.tenants`: the API's tables (tenants, keys, webhooks, deliveries, idempotency keys);
- :mod:`verticals.tenancy.webhooks`: the webhook outbox (an ``Outbox`` on ``job_finished``) and its delivery loop.

Importing this package stays light (no FastAPI): the composition roots that finish jobs (the API server, the
Celery worker, the CLI) build an ``Outbox`` and attach it to their registry; the core never imports it.
"""
