"""Admin pages of the coldchain app."""
