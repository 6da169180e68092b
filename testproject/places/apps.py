from django.apps import AppConfig


class PlacesConfig(AppConfig):
    name = "places"
    verbose_name = "PostGIS models (TESTPROJECT_GIS=1)"
