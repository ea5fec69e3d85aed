"""Admin for admin_wecom."""
