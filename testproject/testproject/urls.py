from django.contrib import admin
from django.db import connection
from django.http import JsonResponse
from django.urls import path


def slots(request):
    """The Slot keys and the schema the serving thread's connection works in
    (pytests/test_fixtures.py asks it through live_server)."""
    from isolation.models import Slot

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    return JsonResponse({"schema": schema, "keys": sorted(Slot.objects.values_list("key", flat=True))})


def visit(request):
    """Writes one row on the serving thread's own connection (flushcheck's live server test)."""
    from flushcheck.models import Visit

    Visit.objects.create(path=request.path)
    return JsonResponse({"visits": Visit.objects.count()})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("slots/", slots),
    path("flushcheck/visit/", visit),
]
