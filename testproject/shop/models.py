from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .fields import CITextField


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = CITextField(unique=True)

    def __str__(self):
        return self.name


class Product(models.Model):
    sku = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self):
        return self.sku


class Order(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="orders"
    )
    created = models.DateTimeField(default=timezone.now)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.IntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0, quantity__lte=100),
                name="shop_orderline_quantity_range",
            ),
        ]


class Reservation(models.Model):
    """A product booked for a time range; ranges may not overlap per product."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    period = DateTimeRangeField()

    class Meta:
        constraints = [
            ExclusionConstraint(
                name="shop_reservation_no_overlap",
                expressions=[
                    ("product", RangeOperators.EQUAL),
                    ("period", RangeOperators.OVERLAPS),
                ],
            ),
        ]


class LegacyInvoice(models.Model):
    """Unmanaged model over a table with a serial key (migration 0002)."""

    id = models.AutoField(primary_key=True)
    number = models.TextField(unique=True)

    class Meta:
        managed = False
        db_table = "shop_legacy_invoice"
