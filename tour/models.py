"""Models of the tour app: see DESIGN.md. Empty until its issue lands."""
