"""Geographic models: PostGIS types, functions and GiST indexes come from the shared schema."""

from django.contrib.gis.db import models


class City(models.Model):
    name = models.CharField(max_length=100, unique=True)
    location = models.PointField(srid=4326)
    area = models.PolygonField(srid=4326, null=True, blank=True)

    def __str__(self):
        return self.name


class Route(models.Model):
    name = models.CharField(max_length=100)
    path = models.LineStringField(srid=4326, spatial_index=True)
    start = models.ForeignKey(City, on_delete=models.CASCADE, related_name="routes_from")

    def __str__(self):
        return self.name
