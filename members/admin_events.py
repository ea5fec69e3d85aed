"""Admin for admin_events."""
