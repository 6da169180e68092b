from django.db import models


class Shelf(models.Model):
    """Sorted with a collation a migration created in the shared schema."""

    label = models.CharField(max_length=50, db_collation="natural_sort")
