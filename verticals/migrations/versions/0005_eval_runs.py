"""eval_runs: stored evaluations of a task on labelled data (verticals eval)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(32)),
        sa.Column("data_name", sa.String(500), nullable=False),
        sa.Column("data_hash", sa.String(64), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("gold_field", sa.String(200), nullable=False),
        sa.Column("evaluator", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.String(64)),
    )
    op.create_index("ix_eval_runs_task", "eval_runs", ["task"])
    op.create_index("ix_eval_runs_tenant_id", "eval_runs", ["tenant_id"])
    op.create_index("ix_eval_runs_job_id", "eval_runs", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_eval_runs_job_id", table_name="eval_runs")
    op.drop_index("ix_eval_runs_tenant_id", table_name="eval_runs")
    op.drop_index("ix_eval_runs_task", table_name="eval_runs")
    op.drop_table("eval_runs")
