"""Database backend pieces: the wrapper and creation mixins, and explicit ENGINEs."""
