"""The SQL that reads the template's catalog, one query per object kind.

Every query selects the objects of the namespace whose oid replaces ``NSP``
and leaves out extension members (extensions are not cloned).  Names come
back already quoted by PostgreSQL's ``quote_ident()``, and the exact prefixes
PostgreSQL prints whatever the path (index, function, trigger and rule
headers) are built alongside, so the planner can check them instead of
searching for the template's name.  ``catalog`` runs these and holds the rows.
"""

from __future__ import annotations

NSP = "__nsp__"  # replaced by the template namespace's oid (an integer literal)


def _not_member(catalog: str, alias: str) -> str:
    """SQL excluding objects that belong to an extension: extensions are not cloned."""
    return (
        f"NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = '{catalog}'::regclass"
        f" AND x.objid = {alias}.oid AND x.deptype = 'e')"
    )


# Kinds refused whole, each found the same way: (its name in messages, catalog, column prefix).
_REFUSED_KINDS = (
    ("operator", "pg_operator", "opr"),
    ("operator class", "pg_opclass", "opc"),
    ("operator family", "pg_opfamily", "opf"),
    ("text search configuration", "pg_ts_config", "cfg"),
    ("text search dictionary", "pg_ts_dict", "dict"),
    ("text search parser", "pg_ts_parser", "prs"),
    ("text search template", "pg_ts_template", "tmpl"),
    ("conversion", "pg_conversion", "con"),
    ("statistics object", "pg_statistic_ext", "stx"),
)
_REFUSED_KINDS_SQL = "".join(
    f"UNION ALL SELECT '{kind}', {prefix}name::text FROM {catalog} c\n"
    f" WHERE {prefix}namespace = {NSP} AND {_not_member(catalog, 'c')}\n"
    for kind, catalog, prefix in _REFUSED_KINDS
)

EXTENSION_IN_TEMPLATE = "extension installed in the template schema"

UNSUPPORTED_SQL = f"""
SELECT 'foreign table', relname::text FROM pg_class c
 WHERE relnamespace = {NSP} AND relkind = 'f'
UNION ALL SELECT 'table inheriting from a table outside the template schema', c.relname::text
 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
 WHERE c.relnamespace = {NSP} AND p.relnamespace <> {NSP}
UNION ALL SELECT 'table with a child or partition outside the template schema', p.relname::text
 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
 WHERE p.relnamespace = {NSP} AND c.relnamespace <> {NSP} AND p.relkind IN ('r', 'p')
UNION ALL SELECT 'partition being detached concurrently', c.relname::text FROM pg_inherits i
 JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relnamespace = {NSP} AND i.inhdetachpending
UNION ALL SELECT 'relation in a non-default tablespace', relname::text FROM pg_class c
 WHERE relnamespace = {NSP} AND reltablespace <> 0
UNION ALL SELECT 'invalid index (left by a failed CREATE INDEX CONCURRENTLY)', c.relname::text
 FROM pg_index i
 JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = {NSP} AND NOT i.indisvalid
UNION ALL SELECT 'aggregate', proname::text FROM pg_proc c
 WHERE pronamespace = {NSP} AND prokind = 'a' AND {_not_member("pg_proc", "c")}
UNION ALL SELECT 'event trigger', e.evtname || ' calling ' || p.proname FROM pg_event_trigger e
 JOIN pg_proc p ON p.oid = e.evtfoid WHERE p.pronamespace = {NSP}
UNION ALL SELECT CASE typtype WHEN 'r' THEN 'range type' WHEN 'm' THEN 'multirange type'
  WHEN 'p' THEN 'pseudo-type' ELSE 'base type' END, typname::text FROM pg_type c
 WHERE typnamespace = {NSP} AND typtype IN ('b', 'r', 'm', 'p') AND {_not_member("pg_type", "c")}
  AND NOT EXISTS (SELECT FROM pg_type e WHERE e.oid = c.typelem AND e.typarray = c.oid)
{_REFUSED_KINDS_SQL}UNION ALL SELECT '{EXTENSION_IN_TEMPLATE}', extname::text FROM pg_extension
 WHERE extnamespace = {NSP}
"""

RELATIONS_SQL = f"""
SELECT c.oid::int8, quote_ident(c.relname), c.relkind::text, c.relpersistence::text,
       coalesce(c.reloptions, ARRAY[]::text[]), coalesce(t.reloptions, ARRAY[]::text[]),
       c.reltoastrelid <> 0, c.relispopulated,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
       (SELECT r.oid::int8 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN'),
       c.reltype::int8, coalesce(rt.typarray, 0)::int8, c.relreplident::text,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
       ARRAY(SELECT i.inhparent::int8 FROM pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
       c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_type rt ON rt.oid = c.reltype
WHERE c.relnamespace = {NSP} AND c.relkind IN ('r', 'p', 'v', 'm') AND {_not_member("pg_class", "c")}
ORDER BY c.relname
"""

COLUMNS_SQL = f"""
SELECT a.attrelid::int8, a.attnum::int, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid), d.oid::int8, a.attidentity::text, a.attgenerated::text,
       t.typnamespace = {NSP} OR coalesce(e.typnamespace = {NSP}, false),
       CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END, a.attstorage::text,
       nullif(a.attcompression::text, ''),
       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::int END,
       a.attislocal, a.attinhcount::int
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND e.typarray = t.oid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = {NSP} AND c.relkind IN ('r', 'p', 'v', 'm', 'c') AND a.attnum > 0
  AND NOT a.attisdropped AND {_not_member("pg_class", "c")}
ORDER BY a.attrelid, a.attnum
"""

SEQUENCES_SQL = f"""
SELECT c.oid::int8, quote_ident(c.relname), c.relpersistence::text, format_type(s.seqtypid, NULL),
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       d.deptype::text, d.refobjid::int8, quote_ident(a.attname)
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
ORDER BY c.relname
"""

CONSTRAINTS_SQL = f"""
SELECT co.oid::int8, quote_ident(co.conname), co.contype::text, co.conrelid::int8, co.contypid::int8,
       pg_get_constraintdef(co.oid), co.confrelid::int8, co.conparentid::int8, co.conislocal,
       co.coninhcount::int
FROM pg_constraint co
WHERE co.connamespace = {NSP} AND co.contype IN ('p', 'u', 'x', 'c', 'f')
ORDER BY co.conname, co.oid
"""

# pg_get_indexdef prints the table schema-qualified whatever the path, and
# "ON ONLY" for an index on a partitioned table: the prefix is checked exactly.
INDEXES_SQL = f"""
SELECT i.indexrelid::int8, quote_ident(ic.relname), i.indrelid::int8, pg_get_indexdef(i.indexrelid),
       'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname)
         || ' ON ' || CASE WHEN ic.relkind = 'I' THEN 'ONLY ' ELSE '' END
         || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' USING ',
       coalesce(ic.reloptions, ARRAY[]::text[]), i.indisclustered, i.indisreplident, co.oid::int8,
       (SELECT h.inhparent::int8 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint co ON co.conindid = i.indexrelid AND co.conrelid = i.indrelid
     AND co.contype IN ('p', 'u', 'x')
WHERE c.relnamespace = {NSP} AND c.relkind IN ('r', 'p', 'm') AND {_not_member("pg_class", "c")}
ORDER BY ic.relname
"""

FUNCTIONS_SQL = f"""
SELECT p.oid::int8, p.prokind::text, quote_ident(p.proname), pg_get_function_identity_arguments(p.oid),
       oidvectortypes(p.proargtypes), CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
       'CREATE OR REPLACE ' || CASE WHEN p.prokind = 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
         || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(',
       p.prosrc, coalesce(p.proconfig, ARRAY[]::text[])
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.pronamespace = {NSP} AND {_not_member("pg_proc", "p")}
ORDER BY p.proname, p.oid
"""

# Triggers a partitioned table's trigger cloned onto its partitions are not
# internal but carry tgparentid; they are read for their enabled state.
TRIGGERS_SQL = f"""
SELECT t.oid::int8, quote_ident(t.tgname), t.tgrelid::int8, pg_get_triggerdef(t.oid),
       'CREATE ' || CASE WHEN t.tgconstraint <> 0 THEN 'CONSTRAINT ' ELSE '' END
         || 'TRIGGER ' || quote_ident(t.tgname) || ' ',
       ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ',
       t.tgenabled::text, t.tgconstraint::int8, t.tgparentid::int8
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
ORDER BY t.tgname, t.oid
"""

POLICIES_SQL = f"""
SELECT p.oid::int8, quote_ident(p.polname), p.polrelid::int8, p.polcmd::text, p.polpermissive,
       ARRAY(SELECT CASE WHEN r.role = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.role)) END
             FROM unnest(p.polroles) WITH ORDINALITY AS r(role, n) ORDER BY r.n),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
ORDER BY p.polname, p.oid
"""

# Pretty-printed rules name their table as the path shows it (the
# non-pretty form always qualifies it); the prefix is checked exactly.
RULES_SQL = f"""
SELECT r.oid::int8, quote_ident(r.rulename), r.ev_class::int8, pg_get_ruledef(r.oid, true),
       'CREATE RULE ' || quote_ident(r.rulename) || ' AS' || chr(10) || '    ON '
         || CASE r.ev_type WHEN '1' THEN 'SELECT' WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT'
              ELSE 'DELETE' END || ' TO ' || quote_ident(c.relname),
       CASE r.ev_type WHEN '1' THEN 'SELECT' WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT'
         ELSE 'DELETE' END,
       r.ev_enabled::text
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = {NSP} AND r.rulename <> '_RETURN' AND {_not_member("pg_class", "c")}
ORDER BY r.rulename, r.oid
"""

TYPES_SQL = f"""
SELECT t.oid::int8, quote_ident(t.typname), t.typtype::text, t.typarray::int8,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> b.typcollation
         THEN t.typcollation::regcollation::text END,
       t.typnotnull, pg_get_expr(t.typdefaultbin, 0), t.typrelid::int8
FROM pg_type t
LEFT JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typnamespace = {NSP} AND t.typtype IN ('e', 'd', 'c') AND {_not_member("pg_type", "t")}
  AND (t.typtype <> 'c' OR EXISTS (SELECT FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind = 'c'))
ORDER BY t.typname
"""

COLLATIONS_SQL = f"""
SELECT c.oid::int8, quote_ident(c.collname), (to_jsonb(c) - 'oid' - 'collname' - 'collnamespace' - 'collowner')::text
FROM pg_collation c
WHERE c.collnamespace = {NSP} AND {_not_member("pg_collation", "c")}
ORDER BY c.collname
"""

# Every object that lives in (or hangs off a relation in) the template schema.
OWNED_CTE = f"""
WITH owned(catalog, oid) AS (
  SELECT 'pg_class'::regclass, oid FROM pg_class WHERE relnamespace = {NSP}
  UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type WHERE typnamespace = {NSP}
  UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE pronamespace = {NSP}
  UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint WHERE connamespace = {NSP}
  UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation WHERE collnamespace = {NSP}
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = {NSP}
  UNION ALL SELECT 'pg_attrdef'::regclass, d.oid FROM pg_attrdef d
    JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = {NSP}
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r
    JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = {NSP}
  UNION ALL SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = {NSP}
)
"""

COMMENTS_SQL = f"""{OWNED_CTE}
SELECT d.classoid::regclass::text, d.objoid::int8, d.objsubid, d.description
FROM pg_description d JOIN owned o ON o.catalog = d.classoid AND o.oid = d.objoid
"""

DEPENDENCIES_SQL = f"""{OWNED_CTE}
SELECT DISTINCT d.classid::regclass::text, d.objid::int8, d.refclassid::regclass::text, d.refobjid::int8
FROM pg_depend d JOIN owned o ON o.catalog = d.classid AND o.oid = d.objid
WHERE d.deptype IN ('n', 'a')
"""
