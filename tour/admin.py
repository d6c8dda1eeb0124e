"""Admin pages of the tour app."""
