from django.db import models


class CITextField(models.TextField):
    """A text column of PostgreSQL's case-insensitive citext type."""

    def db_type(self, connection):
        return "citext"
