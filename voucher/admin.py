"""Admin pages of the voucher app."""
