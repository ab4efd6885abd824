"""jobs.interrupted_at: a job whose local run was stopped (Ctrl-C, kill -INT, kill) with items pending

Before, such a job stayed "running" for ever in `verticals jobs list` though nothing ran it. The local executor
now stamps the job when its process is interrupted; the job's status is then "interrupted" (resumable with
`verticals jobs resume`) until a chunk of it runs again, which clears the stamp.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("interrupted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:
        batch.drop_column("interrupted_at")
