"""Each class commits rows with the same fixed keys and then checks that the
table holds exactly its rows, numbered 1..n. Run in parallel against one
shared database these collide (unique violations, foreign rows, one test's
flush or sequence reset hitting another); with one database or schema per
worker they pass."""

import time

from testproject.testing import TransactionTestCase

from isolation.models import Slot


class SlotTestCase(TransactionTestCase):
    """Base class (no tests). reset_sequences makes ids restart at 1."""

    reset_sequences = True
    marker = 0

    def fill_and_check(self, n):
        for i in range(1, n + 1):
            Slot.objects.create(key=f"k{i}", value=self.marker)
        time.sleep(0.3)  # leave time for another session to interfere
        self.assertEqual(Slot.objects.count(), n)
        self.assertEqual(
            list(Slot.objects.order_by("id").values_list("id", "key", "value")),
            [(i, f"k{i}", self.marker) for i in range(1, n + 1)],
        )
        extra = Slot.objects.create(key="extra", value=self.marker)
        self.assertEqual(extra.id, n + 1)
        self.assertEqual(Slot.objects.count(), n + 1)


class IsolationA(SlotTestCase):
    marker = 1

    def test_one(self):
        self.fill_and_check(1)

    def test_three(self):
        self.fill_and_check(3)

    def test_five(self):
        self.fill_and_check(5)


class IsolationB(SlotTestCase):
    marker = 2

    def test_two(self):
        self.fill_and_check(2)

    def test_four(self):
        self.fill_and_check(4)

    def test_five(self):
        self.fill_and_check(5)


class IsolationC(SlotTestCase):
    marker = 3

    def test_three(self):
        self.fill_and_check(3)

    def test_five(self):
        self.fill_and_check(5)

    def test_one(self):
        self.fill_and_check(1)


class IsolationD(SlotTestCase):
    marker = 4

    def test_four(self):
        self.fill_and_check(4)

    def test_two(self):
        self.fill_and_check(2)

    def test_three(self):
        self.fill_and_check(3)


class IsolationE(SlotTestCase):
    marker = 5

    def test_five(self):
        self.fill_and_check(5)

    def test_two(self):
        self.fill_and_check(2)


class IsolationF(SlotTestCase):
    marker = 6

    def test_one(self):
        self.fill_and_check(1)

    def test_four(self):
        self.fill_and_check(4)


class IsolationG(SlotTestCase):
    marker = 7

    def test_three(self):
        self.fill_and_check(3)

    def test_four(self):
        self.fill_and_check(4)


class IsolationH(SlotTestCase):
    marker = 8

    def test_two(self):
        self.fill_and_check(2)

    def test_five(self):
        self.fill_and_check(5)
