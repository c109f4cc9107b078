"""Notifications: alert rules (TOML), and the delivery of change events by webhook, e-mail and Slack."""
