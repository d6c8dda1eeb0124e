"""The merchant portal under /portal/: server-rendered pages for a merchant's owner and clerks."""
