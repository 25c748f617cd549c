"""The rollout dashboard: its page, scripts and styles, served by tracker/http/dashboard.py."""
