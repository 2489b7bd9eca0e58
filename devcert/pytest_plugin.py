"""pytest fixtures for devcert (filled in by the team-onboarding issue)."""
