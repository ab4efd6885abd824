"""items.explanation: why a result is what it is (issue 29)

A job submitted with the option ``explain`` stores each succeeded item's explanation (a
``verticals.contract.Explanation``: a one-line summary, the method, the target and evidence items) next to its
output. NULL for every other item and job: nothing is written when ``explain`` is off.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("explanation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items", recreate="never") as batch:
        batch.drop_column("explanation")
