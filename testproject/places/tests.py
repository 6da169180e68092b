"""PostGIS in every worker: types, functions and spatial indexes live in the shared schema,
while each worker's rows stay in its own schema."""

import time

from django.contrib.gis.geos import LineString, Point, Polygon
from django.contrib.gis.measure import D
from django.db import connection
from django.test import TestCase, TransactionTestCase, tag

from .models import City, Route


def where_postgis_lives():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'postgis'"
        )
        return cursor.fetchone()[0]


def current_schema():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


class SpatialQueries(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.paris = City.objects.create(name="Paris", location=Point(2.3522, 48.8566))
        cls.lyon = City.objects.create(name="Lyon", location=Point(4.8357, 45.7640))
        City.objects.create(
            name="Box",
            location=Point(0.5, 0.5),
            area=Polygon(((0, 0), (0, 1), (1, 1), (1, 0), (0, 0))),
        )

    def test_extension_is_in_the_shared_schema_not_the_workers(self):
        self.assertEqual(where_postgis_lives(), "public")
        self.assertNotEqual(current_schema(), "public")
        self.assertNotIn("template", current_schema())

    def test_distance_lookup_uses_postgis_functions(self):
        near_paris = City.objects.filter(location__distance_lte=(self.paris.location, D(km=100)))
        self.assertEqual([c.name for c in near_paris], ["Paris"])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT round(ST_DistanceSphere(a.location, b.location) / 1000) "
                "FROM places_city a, places_city b WHERE a.name = 'Paris' AND b.name = 'Lyon'"
            )
            self.assertEqual(cursor.fetchone()[0], 391)

    def test_contains_and_spatial_index(self):
        self.assertEqual(City.objects.get(area__contains=Point(0.2, 0.2)).name, "Box")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = 'places_route' AND indexdef LIKE '%%USING gist%%'"
            )
            self.assertEqual(len(cursor.fetchall()), 1)

    def test_routes(self):
        route = Route.objects.create(
            name="A6", path=LineString(self.paris.location, self.lyon.location), start=self.paris
        )
        self.assertTrue(Route.objects.filter(path__intersects=self.lyon.location.buffer(0.01)))
        self.assertEqual(route.start.routes_from.count(), 1)


class ColliderA(TransactionTestCase):
    """Committed rows with fixed names: workers sharing a schema would collide."""

    def test_commit_and_count(self):
        City.objects.create(name="Shared", location=Point(1, 1))
        time.sleep(0.3)
        self.assertEqual(City.objects.filter(location__bboverlaps=Point(1, 1).buffer(1)).count(), 1)


class ColliderB(ColliderA):
    pass


@tag("serial")
class SerialSpatial(TestCase):
    def test_runs_in_main_schema_with_postgis(self):
        self.assertTrue(current_schema().endswith("_main"))
        City.objects.create(name="Serial", location=Point(3, 3))
        self.assertEqual(City.objects.filter(location__distance_lte=(Point(3, 3), 1)).count(), 1)
