"""Commands of this group are registered here (filled in by its issue)."""
