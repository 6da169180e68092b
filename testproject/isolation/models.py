from django.db import models


class Slot(models.Model):
    key = models.CharField(max_length=20, unique=True)
    value = models.IntegerField()

    def __str__(self):
        return self.key
