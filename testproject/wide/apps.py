from django.apps import AppConfig


class WideConfig(AppConfig):
    name = "wide"
    verbose_name = "Many tables created by SQL (TESTPROJECT_WIDE_TABLES)"
