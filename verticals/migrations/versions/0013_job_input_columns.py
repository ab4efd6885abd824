"""jobs.input_columns: the flat columns of a job's stored inputs, recorded when they are stored

A CSV or Parquet export names its columns before it writes a row. The output columns come from the task's
schema; the input columns (an input keeps every column of its file) were found by reading every stored input
once before the write: a third of a 100k-item export's time. Submission now records them (with their
Parquet kinds); NULL (jobs stored before this revision, or whose inputs were purged) keeps the read.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("input_columns", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:
        batch.drop_column("input_columns")
