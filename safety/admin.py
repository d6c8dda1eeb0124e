"""Admin pages of the safety app."""
