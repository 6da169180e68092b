"""Rows created by data migration 0002 (and restored by the test helpers)."""

SEED_TAGS = ("fiction", "history", "science")
SEED_AUTHOR = "Seed Author"


def create_seed_rows(Tag, Author, using):
    """Create the seed tags and author that are missing; idempotent."""
    for name in SEED_TAGS:
        Tag.objects.using(using).get_or_create(name=name)
    if not Author.objects.using(using).filter(name=SEED_AUTHOR).exists():
        Author.objects.using(using).create(name=SEED_AUTHOR)
