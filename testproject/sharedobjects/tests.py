from django.db import connection
from django.test import TestCase

from .models import Shelf


class SharedObjectsTests(TestCase):
    def test_the_shared_collation_sorts_naturally(self):
        Shelf.objects.create(label="shelf2")
        labels = list(Shelf.objects.order_by("label").values_list("label", flat=True))
        self.assertEqual(labels, ["shelf1", "shelf2", "shelf9", "shelf10"])

    def test_the_shared_type_and_function_are_there(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT shelf_code('a'), 'open'::shelf_state::text")
            self.assertEqual(cursor.fetchone(), ("A", "open"))
