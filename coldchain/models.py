"""Models of the coldchain app: see DESIGN.md. Empty until its issue lands."""
