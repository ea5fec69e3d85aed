"""Models arrive with the guides issue."""
