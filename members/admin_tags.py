"""Admin for admin_tags."""
