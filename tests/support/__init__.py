"""Helpers and fixtures that several test modules share; test modules import from here, never from each other."""
