#!/usr/bin/env python
"""Django's command-line utility for the schemaiso test project."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    start_method = os.environ.get("SCHEMAISO_START_METHOD")
    if start_method:
        # Django's parallel runner reads multiprocessing.get_start_method().
        import multiprocessing

        multiprocessing.set_start_method(start_method, force=True)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
