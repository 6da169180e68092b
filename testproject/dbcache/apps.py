from django.apps import AppConfig


class DbcacheConfig(AppConfig):
    name = "dbcache"
    verbose_name = "Tests of Django's database cache (TESTPROJECT_DB_CACHE)"
