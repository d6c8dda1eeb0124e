"""Models of the voucher app: see DESIGN.md. Empty until its issue lands."""
