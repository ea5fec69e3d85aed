"""Models arrive with the livestream issue."""
