"""pattern_flow_analysis lists only pattern flows: flows whose first checkpoint is PATTERN_PUBLISHED

A consumer logs its own flows into ``integration_events`` too (e.g. subscription rows with
their own flow ids); they appeared as one-checkpoint "flows". Same columns as migration 0003's
view; a flow is listed once its first checkpoint by time (then id) is PATTERN_PUBLISHED.

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SELECT = """
SELECT flow_id,
       CAST(max(symbol) AS varchar(20)) AS symbol,
       CAST(max(pattern_name) AS varchar(50)) AS pattern_name,
       min(timestamp) AS start_time,
       max(timestamp) AS end_time,
       round((extract(epoch FROM (max(timestamp) - min(timestamp))) * 1000)::numeric, 2) AS total_latency_ms,
       max(confidence) AS confidence,
       max(user_count) AS users_notified,
       count(*) AS checkpoints_logged,
       array_agg(checkpoint ORDER BY timestamp, id) AS flow_path
FROM integration_events
WHERE flow_id IS NOT NULL AND event_type <> 'heartbeat'
GROUP BY flow_id
"""


def upgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW pattern_flow_analysis AS " + SELECT
               + "HAVING (array_agg(checkpoint ORDER BY timestamp, id))[1] = 'PATTERN_PUBLISHED'")


def downgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW pattern_flow_analysis AS " + SELECT)
