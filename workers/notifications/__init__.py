"""The notifications pool: alerts from every pool delivered by signed webhook, Slack and email."""
