"""What the API and the console do, as plain functions over a store session.

They take the caller (``serving.identity.Principal``) and raise ``serving.errors`` domain errors; they
know nothing of HTTP, forms or templates, so that every write has exactly one code path.
"""
