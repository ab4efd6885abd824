"""jobs.n_pending/n_succeeded/n_failed/n_cancelled counters; items index (job_id, status, seq)

Counting a job's items by status read every item of the job (the progress of a 1M-item job, polled):
the counters are kept by the store in the same transaction as each status change. The
(job_id, status) index becomes (job_id, status, seq), so that the statements that find items of one
status by seq (a batch's begin, a chunk's pending items, export of one status) search by all three.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUSES = ("pending", "succeeded", "failed", "cancelled")


def upgrade() -> None:
    op.create_index("ix_items_job_status_seq", "items", ["job_id", "status", "seq"])
    op.drop_index("ix_items_job_status", table_name="items")
    with op.batch_alter_table("jobs") as batch:
        for status in STATUSES:
            batch.add_column(sa.Column(f"n_{status}", sa.Integer(), nullable=False, server_default="0"))
    for status in STATUSES:
        op.execute(f"UPDATE jobs SET n_{status} = (SELECT count(*) FROM items "
                   f"WHERE items.job_id = jobs.id AND items.status = '{status}')")


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite >= 3.35 too): recreating ``jobs`` would cascade-delete items
    with op.batch_alter_table("jobs", recreate="never") as batch:
        for status in STATUSES:
            batch.drop_column(f"n_{status}")
    op.create_index("ix_items_job_status", "items", ["job_id", "status"])
    op.drop_index("ix_items_job_status_seq", table_name="items")
