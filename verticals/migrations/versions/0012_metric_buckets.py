"""metric_buckets: histograms of batch latency and queue wait, added to by every process that runs batches

Written in the transaction that writes a batch's results (one row per histogram and bucket: its count and sum);
/metrics reads these few rows, never the items.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_buckets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("le", sa.String(16), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum_s", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_buckets")
