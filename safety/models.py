"""Models of the safety app: see DESIGN.md. Empty until its issue lands."""
