"""job_usage: what each job used (items, model seconds and tokens per model and device, wall seconds), per UTC day

Written in the transaction that writes each batch's results, so that it is exact; kept when a job is deleted or
pruned (no foreign key), so that a tenant's usage of a day does not change afterwards. Read by `verticals usage`,
GET /v1/usage, the SDK and every job's summary.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_usage",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("device", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("item_count", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("model_s", sa.Float(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_job_usage_tenant_day", "job_usage", ["tenant_id", "day"])
    op.create_index("ix_job_usage_day", "job_usage", ["day"])


def downgrade() -> None:
    op.drop_index("ix_job_usage_day", table_name="job_usage")
    op.drop_index("ix_job_usage_tenant_day", table_name="job_usage")
    op.drop_table("job_usage")
