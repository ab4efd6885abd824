"""job_events: the outbox of job_finished events, written in the transaction that finishes a job

Finishing a job was two transactions (finished_at, then final_status) followed by the job_finished hook:
a process dying in between left a job without its final status and an event never fired. Now one
conditional UPDATE sets both and inserts the event here; delivery is at least once.
Jobs left half-finished by the old code get their final status from their counters.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])
    op.create_index("ix_job_events_pending", "job_events", ["delivered_at", "id"])
    op.execute(
        "UPDATE jobs SET final_status = CASE WHEN n_cancelled > 0 THEN 'cancelled' "
        "WHEN n_failed > 0 AND n_succeeded > 0 THEN 'partial' WHEN n_failed > 0 THEN 'failed' "
        "ELSE 'succeeded' END WHERE finished_at IS NOT NULL AND final_status IS NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_job_events_pending", table_name="job_events")
    op.drop_index("ix_job_events_job_id", table_name="job_events")
    op.drop_table("job_events")
