"""Tables that make a flush hard (tests/test_flush.py runs this app twice, with
Django's flush and with schemaiso's, and compares the database after each)."""

from django.db import models


class Node(models.Model):
    """References itself (also by a key checked at once, ON DELETE RESTRICT)."""

    name = models.CharField(max_length=20)
    parent = models.ForeignKey("self", null=True, on_delete=models.CASCADE)


class Left(models.Model):
    """Left and Right reference each other, also by keys checked at once."""

    name = models.CharField(max_length=20)
    right = models.ForeignKey("Right", null=True, on_delete=models.SET_NULL, related_name="+")


class Right(models.Model):
    name = models.CharField(max_length=20)
    left = models.ForeignKey(Left, null=True, on_delete=models.SET_NULL, related_name="+")


class Audited(models.Model):
    """Its triggers log every insert and delete into AuditLog."""

    name = models.CharField(max_length=20)


class AuditLog(models.Model):
    event = models.CharField(max_length=20)
    name = models.CharField(max_length=20)


class Transient(models.Model):
    """Dropped by one test and created again by the next."""

    name = models.CharField(max_length=20)
    node = models.ForeignKey(Node, null=True, on_delete=models.CASCADE)


class Visit(models.Model):
    """Written by the live server's thread, on its own connection."""

    path = models.CharField(max_length=100)


class Reading(models.Model):
    """A partitioned table in the database (its migration says so)."""

    taken = models.DateField()
    value = models.IntegerField()
