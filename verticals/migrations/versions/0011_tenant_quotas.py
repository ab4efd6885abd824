"""tenant_quotas: the operator's per-tenant limits (concurrent jobs, items per day, model seconds per day)

Set with `verticals tenants quota set`; enforced when a job is created (POST /v1/jobs, uploads, evaluations,
retries): past a limit the API answers 429 with Retry-After. A limit left NULL is not set.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_quotas",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("max_active_jobs", sa.Integer(), nullable=True),
        sa.Column("items_per_day", sa.BigInteger(), nullable=True),
        sa.Column("model_seconds_per_day", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_quotas")
