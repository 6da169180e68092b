"""Shop models on PostgreSQL: citext, check and exclusion constraints, and a
hand-made serial-key table seeded by a data migration."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import F, ProtectedError, Sum
from django.test import TestCase

from shop.models import (
    Customer,
    LegacyInvoice,
    Order,
    OrderLine,
    Product,
    Reservation,
)

T0 = datetime(2024, 1, 1, 9, tzinfo=UTC)


def hours(start, end):
    """A [T0+start h, T0+end h) range."""
    return DateTimeTZRange(T0 + timedelta(hours=start), T0 + timedelta(hours=end))


class OrderTests(TestCase):
    """FKs, aggregates, citext and constraints in a TestCase."""

    @classmethod
    def setUpTestData(cls):
        cls.ada = Customer.objects.create(name="Ada", email="Ada@Example.com")
        cls.pen = Product.objects.create(sku="PEN", name="Pen", price=Decimal("1.50"))
        cls.ink = Product.objects.create(sku="INK", name="Ink", price=Decimal("4.00"))
        cls.order = Order.objects.create(customer=cls.ada)
        OrderLine.objects.create(order=cls.order, product=cls.pen, quantity=4)
        OrderLine.objects.create(order=cls.order, product=cls.ink, quantity=2)

    def test_order_total(self):
        """Joins across Order -> OrderLine -> Product aggregate correctly."""
        total = self.order.lines.aggregate(
            total=Sum(F("quantity") * F("product__price"))
        )["total"]
        self.assertEqual(total, Decimal("14.00"))
        self.assertEqual(self.ada.orders.get().lines.count(), 2)

    def test_citext_lookup_ignores_case(self):
        """The citext column compares case-insensitively in the database."""
        self.assertEqual(Customer.objects.get(email="ada@example.COM"), self.ada)

    def test_citext_unique_ignores_case(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            Customer.objects.create(name="Other Ada", email="ADA@EXAMPLE.COM")

    def test_quantity_check_constraint(self):
        """CheckConstraint: 0 < quantity <= 100."""
        for quantity in (0, 101):
            with self.subTest(quantity=quantity):
                with self.assertRaises(IntegrityError), transaction.atomic():
                    OrderLine.objects.create(
                        order=self.order, product=self.pen, quantity=quantity
                    )

    def test_protect_product(self):
        """on_delete=PROTECT keeps ordered products."""
        with self.assertRaises(ProtectedError):
            self.pen.delete()


class ReservationTests(TestCase):
    """ExclusionConstraint (gist, needs btree_gist): no overlapping periods
    for the same product."""

    @classmethod
    def setUpTestData(cls):
        cls.room = Product.objects.create(sku="ROOM", name="Room", price=100)
        cls.hall = Product.objects.create(sku="HALL", name="Hall", price=500)
        Reservation.objects.create(product=cls.room, period=hours(0, 2))

    def test_overlap_rejected(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            Reservation.objects.create(product=self.room, period=hours(1, 3))

    def test_adjacent_and_other_product_allowed(self):
        Reservation.objects.create(product=self.room, period=hours(2, 4))
        Reservation.objects.create(product=self.hall, period=hours(1, 3))
        self.assertEqual(Reservation.objects.filter(product=self.room).count(), 2)
        self.assertQuerySetEqual(
            Reservation.objects.filter(period__overlap=hours(1, 2)).order_by("id"),
            [self.room, self.hall],
            transform=lambda r: r.product,
        )


class LegacyInvoiceTests(TestCase):
    """The serial-key table from RunSQL and its three seeded rows."""

    def test_seeded_invoices(self):
        """Data migration 0003 inserted ids 1..3."""
        self.assertEqual(
            list(LegacyInvoice.objects.order_by("id").values_list("id", "number")),
            [(1, "INV-0001"), (2, "INV-0002"), (3, "INV-0003")],
        )

    def test_serial_sequence_continues(self):
        """A new row gets id 4 from the serial sequence the migration advanced.

        Sequences are not transactional: the TestCase rollback keeps the
        sequence at 4, so the cleanup puts it back to 3 (keeps --keepdb runs
        and other tests deterministic). This is the only test inserting here.
        """
        self.addCleanup(self._restore_sequence)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence('shop_legacy_invoice', 'id')")
            self.assertIsNotNone(cursor.fetchone()[0])
        invoice = LegacyInvoice.objects.create(number="INV-0004")
        self.assertEqual(invoice.id, 4)

    def _restore_sequence(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('shop_legacy_invoice', 'id'), 3)"
            )
