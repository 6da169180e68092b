from django.contrib.postgres.fields import ArrayField, HStoreField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self):
        return self.name


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200)
    pages = models.IntegerField(default=100)
    published = models.BooleanField(default=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="books")
    keywords = ArrayField(models.CharField(max_length=30), default=list, blank=True)
    attributes = HStoreField(default=dict, blank=True)
    # Filled by the library_book_search_title trigger (migration 0003).
    search_title = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [
            GinIndex(
                OpClass(Upper("title"), name="gin_trgm_ops"),
                name="library_book_title_trgm",
            ),
            models.Index(
                fields=["author"],
                condition=Q(published=True),
                name="library_book_published_idx",
            ),
            models.Index(Lower("title"), name="library_book_title_lower"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["author", "title"],
                name="library_book_author_title_uniq",
                deferrable=models.Deferrable.DEFERRED,
            ),
            models.CheckConstraint(
                condition=Q(pages__gt=0), name="library_book_pages_positive"
            ),
        ]

    def __str__(self):
        return self.title


class BookStats(models.Model):
    """Read-only model over the library_book_stats view (migration 0003)."""

    author = models.OneToOneField(
        Author,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        related_name="stats",
        db_column="author_id",
    )
    author_name = models.CharField(max_length=100)
    book_count = models.IntegerField()

    class Meta:
        managed = False
        db_table = "library_book_stats"
