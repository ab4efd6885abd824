"""The REST API's accounts: tenants, API keys, idempotency keys, webhooks and the webhook outbox.

- :mod:`~verticals.tenancy.tenants`: the tables and their repository, :class:`Tenants`;
- :mod:`~verticals.tenancy.webhooks`: recording deliveries for finished jobs, signing and sending them.

Used by the API server, its CLI commands (``keys``, ``webhooks``) and the workers (which record deliveries of
the jobs they finish); the job engine knows nothing of tenants beyond ``Job.tenant_id``.
"""
