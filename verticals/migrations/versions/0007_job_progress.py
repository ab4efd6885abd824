"""jobs.progress: the latest progress a task reported within the item(s) it is running

A testgen item takes minutes and a tutor.hint batch a minute and a half: with progress counted in whole items
only, the bar stayed at 0 % that long. Tasks now report progress within their running batch
(``RunContext.progress``); the engine stores the latest report here (throttled to about one write per second
per job) and clears it with the batch's results. Nullable JSON: ``{"done", "total", "note", "items", "at"}``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:
        batch.drop_column("progress")
