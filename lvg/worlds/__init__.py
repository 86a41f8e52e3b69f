"""Worlds: each one a package with its data, captions, grammar and referee."""
