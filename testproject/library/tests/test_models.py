"""Library models on PostgreSQL: contrib.postgres fields, indexes, constraints,
migration-seeded rows and the raw SQL objects of migration 0003."""

from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction
from django.test import TestCase
from testproject.testing import TransactionTestCase

from library.models import Author, Book, BookStats, Tag
from library.seed import SEED_AUTHOR, SEED_TAGS


class BookTests(TestCase):
    """Ordinary TestCase work on the migrated schema."""

    @classmethod
    def setUpTestData(cls):
        cls.author = Author.objects.create(name="Ursula K. Le Guin")
        cls.fiction = Tag.objects.get(name="fiction")
        cls.history = Tag.objects.get(name="history")
        cls.dispossessed = Book.objects.create(
            author=cls.author,
            title="The Dispossessed",
            pages=387,
            published=True,
            keywords=["anarchy", "physics"],
            attributes={"format": "paperback", "lang": "en"},
        )
        cls.dispossessed.tags.add(cls.fiction)
        cls.earthsea = Book.objects.create(
            author=cls.author,
            title="A Wizard of Earthsea",
            keywords=["magic"],
            attributes={"format": "hardcover"},
        )
        cls.earthsea.tags.add(cls.fiction, cls.history)

    def test_seed_rows_from_data_migration(self):
        """RunPython migration 0002 ran in this database."""
        self.assertEqual(
            sorted(Tag.objects.values_list("name", flat=True)), list(SEED_TAGS)
        )
        self.assertTrue(Author.objects.filter(name=SEED_AUTHOR).exists())

    def test_foreign_key_and_many_to_many(self):
        """FK and M2M joins work in both directions."""
        self.assertEqual(self.author.books.count(), 2)
        self.assertQuerySetEqual(
            Book.objects.filter(tags=self.history), [self.earthsea]
        )
        self.assertEqual(self.fiction.books.count(), 2)
        self.assertEqual(
            Book.objects.filter(tags__name="fiction", author=self.author).count(), 2
        )

    def test_cascade_delete(self):
        """Deleting an author deletes its books (on_delete=CASCADE)."""
        self.author.delete()
        self.assertFalse(Book.objects.exists())

    def test_array_field(self):
        """ArrayField lookups: contains, overlap, length, index."""
        self.assertQuerySetEqual(
            Book.objects.filter(keywords__contains=["physics"]), [self.dispossessed]
        )
        self.assertEqual(
            Book.objects.filter(keywords__overlap=["magic", "physics"]).count(), 2
        )
        self.assertQuerySetEqual(Book.objects.filter(keywords__len=1), [self.earthsea])
        self.assertQuerySetEqual(
            Book.objects.filter(keywords__0="anarchy"), [self.dispossessed]
        )

    def test_hstore_field(self):
        """HStoreField lookups and round trip (needs the hstore extension)."""
        self.assertQuerySetEqual(
            Book.objects.filter(attributes__format="paperback"), [self.dispossessed]
        )
        self.assertQuerySetEqual(
            Book.objects.filter(attributes__has_key="lang"), [self.dispossessed]
        )
        self.earthsea.refresh_from_db()
        self.assertEqual(self.earthsea.attributes, {"format": "hardcover"})

    def test_trigram_similarity(self):
        """pg_trgm is installed: trigram_similar finds a misspelled title."""
        self.assertQuerySetEqual(
            Book.objects.filter(title__trigram_similar="The Dispossesed"),
            [self.dispossessed],
        )

    def test_trigger_fills_search_title(self):
        """The BEFORE INSERT OR UPDATE trigger sets search_title = upper(title)."""
        book = Book.objects.create(author=self.author, title="The Lathe of Heaven")
        book.refresh_from_db()
        self.assertEqual(book.search_title, "THE LATHE OF HEAVEN")
        Book.objects.filter(pk=book.pk).update(title="Lathe")
        book.refresh_from_db()
        self.assertEqual(book.search_title, "LATHE")

    def test_view_model(self):
        """The unmanaged BookStats model reads the library_book_stats view."""
        self.assertEqual(BookStats.objects.get(author=self.author).book_count, 2)
        self.assertEqual(BookStats.objects.get(author__name=SEED_AUTHOR).book_count, 0)
        Book.objects.create(author=self.author, title="Lavinia")
        self.assertEqual(BookStats.objects.get(author=self.author).book_count, 3)

    def test_sql_function_sees_this_databases_books(self):
        """library_book_count() (SET search_path FROM CURRENT) counts the
        same library_book table the ORM writes to."""

        def sql_count():
            with connection.cursor() as cursor:
                cursor.execute("SELECT library_book_count()")
                return cursor.fetchone()[0]

        self.assertEqual(sql_count(), Book.objects.count())
        Book.objects.create(author=self.author, title="The Word for World Is Forest")
        self.assertEqual(Book.objects.count(), 3)
        self.assertEqual(sql_count(), 3)

    def test_check_constraint(self):
        """CheckConstraint(pages > 0) is enforced by the database."""
        with self.assertRaises(IntegrityError), transaction.atomic():
            Book.objects.create(author=self.author, title="Empty", pages=0)

    def test_immediate_unique_constraint(self):
        """A plain unique column fails at once."""
        with self.assertRaises(IntegrityError), transaction.atomic():
            Tag.objects.create(name="fiction")

    def test_deferred_unique_constraint(self):
        """The DEFERRED unique (author, title) accepts a duplicate until the
        constraints are checked (here by check_constraints(), which runs
        SET CONSTRAINTS ALL IMMEDIATE)."""
        with self.assertRaises(IntegrityError), transaction.atomic():
            Book.objects.create(author=self.author, title="The Dispossessed")
            self.assertEqual(Book.objects.filter(title="The Dispossessed").count(), 2)
            connection.check_constraints()
        self.assertEqual(Book.objects.filter(title="The Dispossessed").count(), 1)


class DeferredUniqueAtCommitTests(TransactionTestCase):
    """Outside a test transaction, the deferred unique constraint fails at COMMIT."""

    def test_violation_raised_at_commit(self):
        author = Author.objects.create(name="Twice")
        reached_commit = False
        with self.assertRaises(IntegrityError), transaction.atomic():
            Book.objects.create(author=author, title="Same")
            Book.objects.create(author=author, title="Same")
            reached_commit = True
        self.assertTrue(reached_commit)
        self.assertFalse(Book.objects.exists())


class ResetSequencesTests(TransactionTestCase):
    """reset_sequences=True restarts the author id sequence before each test.

    The seed author (migration 0002, or restored by the previous
    TransactionTestCase of this database) may already hold id 1 or more, so
    setUp deletes all authors first. Both tests then get ids 1 and 2: the
    sequence is reset per test, not per class.
    """

    reset_sequences = True

    def setUp(self):
        Author.objects.all().delete()

    def test_first_author_gets_id_1(self):
        self.assertEqual(Author.objects.create(name="First").pk, 1)
        self.assertEqual(Author.objects.create(name="Second").pk, 2)

    def test_sequence_reset_again(self):
        self.assertEqual(Author.objects.create(name="Again").pk, 1)
        self.assertEqual(Author.objects.create(name="Again 2").pk, 2)


class SerializedRollbackTests(TransactionTestCase):
    """serialized_rollback=True reloads the data-migration rows before each
    test, even after a flush (other TransactionTestCases, or the previous
    test of this class, which deletes them)."""

    serialized_rollback = True

    @classmethod
    def setUpClass(cls):
        # A flush by another TransactionTestCase re-creates content types and
        # permissions (post_migrate) under new ids, which would collide with
        # their serialized copies. Start from an empty database instead; the
        # seed rows can then only come from the serialized copy.
        call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True)
        super().setUpClass()

    def assertSeedRows(self):
        self.assertEqual(
            sorted(Tag.objects.values_list("name", flat=True)), list(SEED_TAGS)
        )
        self.assertEqual(
            list(Author.objects.values_list("name", flat=True)), [SEED_AUTHOR]
        )

    def test_a_delete_seed_rows(self):
        self.assertSeedRows()
        Tag.objects.all().delete()
        Author.objects.all().delete()

    def test_b_seed_rows_restored(self):
        self.assertSeedRows()


class ReportsDatabaseTests(TestCase):
    """A TestCase spanning two real databases writes to each independently."""

    databases = {"default", "reports"}

    @classmethod
    def setUpTestData(cls):
        Author.objects.create(name="Only in default")
        Author.objects.using("reports").create(name="Only in reports")

    def test_databases_are_distinct(self):
        names = {}
        for alias in ("default", "reports"):
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT current_database()")
                names[alias] = cursor.fetchone()[0]
        self.assertNotEqual(names["default"], names["reports"])

    def test_writes_stay_in_their_database(self):
        self.assertTrue(Author.objects.filter(name="Only in default").exists())
        self.assertFalse(Author.objects.filter(name="Only in reports").exists())
        self.assertTrue(
            Author.objects.using("reports").filter(name="Only in reports").exists()
        )
        self.assertFalse(
            Author.objects.using("reports").filter(name="Only in default").exists()
        )

    def test_reports_is_migrated_and_seeded(self):
        """Migrations (with their data and SQL objects) ran in reports too."""
        self.assertEqual(Tag.objects.using("reports").count(), 3)
        book = Book.objects.using("reports").create(
            author=Author.objects.using("reports").get(name="Only in reports"),
            title="report",
        )
        book.refresh_from_db()
        self.assertEqual(book.search_title, "REPORT")


class ReplicaMixin:
    databases = {"default", "replica"}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        # Stock Django closes only the primary's pool before dropping the test
        # database; with TESTPROJECT_POOL=1 the mirror's pool would keep
        # sessions open on it and DROP DATABASE would fail.
        connections["replica"].close()
        connections["replica"].close_pool()


class ReplicaMirrorTests(ReplicaMixin, TransactionTestCase):
    """replica is a test mirror of default: it reads default's committed rows.

    Django documents that this relies on committed data, hence
    TransactionTestCase.
    """

    def test_replica_reads_default(self):
        Author.objects.create(name="Mirrored")
        self.assertTrue(
            Author.objects.using("replica").filter(name="Mirrored").exists()
        )

    def test_replica_is_the_same_database(self):
        names = set()
        for alias in ("default", "replica"):
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT current_database()")
                names.add(cursor.fetchone()[0])
        self.assertEqual(len(names), 1)


class ReplicaMirrorInTestCaseTests(ReplicaMixin, TestCase):
    """In a TestCase the mirror is a separate connection outside the test
    transaction (stock Django): it sees committed rows, not uncommitted ones."""

    def test_replica_sees_committed_rows_only(self):
        Author.objects.create(name="Uncommitted")
        self.assertEqual(Tag.objects.using("replica").count(), 3)
        self.assertFalse(
            Author.objects.using("replica").filter(name="Uncommitted").exists()
        )
