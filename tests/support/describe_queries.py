"""The catalog queries of the describe oracle: what is read about one schema.

Each query selects the objects of the namespace whose oid replaces ``NSP``
(extension members excluded), as the described schema's own search_path
deparses them; ``describe`` turns the rows into a schema-name-independent
description.  None of this is shared with the clone engine's catalog queries,
so the oracle cannot repeat the engine's mistakes.
"""

from __future__ import annotations

NSP = "__nsp__"  # replaced by the described namespace's oid (an integer literal)


def _not_member(catalog: str, alias: str) -> str:
    """SQL excluding extension members: clones do not copy them, so neither side describes them."""
    return (
        f"NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = '{catalog}'::regclass"
        f" AND x.objid = {alias}.oid AND x.deptype = 'e')"
    )


# Parents print as the path shows them: the schema's own unqualified, any other qualified.
RELATIONS_SQL = f"""
SELECT c.relname::text, c.relkind::text, c.relpersistence::text, coalesce(c.reloptions, ARRAY[]::text[]),
       coalesce(t.reloptions, ARRAY[]::text[]), c.relreplident::text,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END, c.relispopulated,
       pg_get_partkeydef(c.oid), c.relispartition, pg_get_expr(c.relpartbound, c.oid),
       ARRAY(SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid
             ORDER BY i.inhseqno),
       c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relnamespace = {NSP} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_not_member("pg_class", "c")}
"""

COLUMNS_SQL = f"""
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
       a.attcollation::regcollation::text, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       a.attidentity::text, a.attgenerated::text, a.attstorage::text, a.attcompression::text,
       a.attstattarget::int, a.attislocal, a.attinhcount::int
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = {NSP} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0
  AND NOT a.attisdropped AND {_not_member("pg_class", "c")}
ORDER BY c.relname, a.attnum
"""

SEQUENCES_SQL = f"""
SELECT c.relname::text, quote_ident(c.relname), c.relpersistence::text, format_type(s.seqtypid, NULL),
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       d.deptype::text, o.relnamespace = {NSP}, o.relname::text, a.attname::text
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class o ON o.oid = d.refobjid
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
"""

CONSTRAINTS_SQL = f"""
SELECT coalesce(r.relname, t.typname)::text, co.conname::text, co.contype::text, pg_get_constraintdef(co.oid),
       co.condeferrable, co.condeferred, co.convalidated, coalesce(i.reloptions, ARRAY[]::text[]),
       co.conislocal, co.coninhcount::int, co.connoinherit,
       pc.conrelid::regclass::text || '.' || pc.conname
FROM pg_constraint co
LEFT JOIN pg_class r ON r.oid = co.conrelid
LEFT JOIN pg_type t ON t.oid = co.contypid
LEFT JOIN pg_class i ON i.oid = co.conindid AND co.contype IN ('p', 'u', 'x')
LEFT JOIN pg_constraint pc ON pc.oid = co.conparentid
WHERE co.connamespace = {NSP}
"""

INDEXES_SQL = f"""
SELECT ic.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
       i.indisexclusion, i.indimmediate, i.indisclustered, i.indisvalid,
       coalesce(ic.reloptions, ARRAY[]::text[]),
       (SELECT h.inhparent::regclass::text FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
"""

FUNCTIONS_SQL = f"""
SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')', p.prokind::text,
       CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END, coalesce(p.proconfig, ARRAY[]::text[])
FROM pg_proc p
WHERE p.pronamespace = {NSP} AND {_not_member("pg_proc", "p")}
"""

TRIGGERS_SQL = f"""
SELECT c.relname::text, quote_ident(c.relname), t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text,
       p.tgrelid::regclass::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
LEFT JOIN pg_trigger p ON p.oid = t.tgparentid
WHERE NOT t.tgisinternal AND c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
"""

POLICIES_SQL = f"""
SELECT c.relname::text, p.polname::text, p.polcmd::text, p.polpermissive,
       ARRAY(SELECT CASE WHEN r.role = 0 THEN 'public' ELSE pg_get_userbyid(r.role)::text END
             FROM unnest(p.polroles) AS r(role) ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
"""

# Pretty-printed, rules name their table as the path shows it (the plain form always qualifies it).
RULES_SQL = f"""
SELECT c.relname::text, r.rulename::text, pg_get_ruledef(r.oid, true), r.ev_enabled::text
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = {NSP} AND r.rulename <> '_RETURN' AND {_not_member("pg_class", "c")}
"""

TYPES_SQL = f"""
SELECT t.typname::text, t.typtype::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       t.typcollation::regcollation::text, t.typnotnull, pg_get_expr(t.typdefaultbin, 0)
FROM pg_type t
WHERE t.typnamespace = {NSP} AND {_not_member("pg_type", "t")}
  AND NOT EXISTS (SELECT FROM pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid)
  AND (t.typrelid = 0 OR EXISTS (SELECT FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind = 'c'))
"""

COLLATIONS_SQL = f"""
SELECT c.collname::text, (to_jsonb(c) - 'oid' - 'collname' - 'collnamespace' - 'collowner')::text
FROM pg_collation c
WHERE c.collnamespace = {NSP} AND {_not_member("pg_collation", "c")}
"""

# Objects in the schema, including those that hang off its relations (but not the
# internal triggers of foreign keys, whose names contain oids).
OWNED_CTE = f"""
WITH owned(catalog, oid) AS (
  SELECT 'pg_class'::regclass, c.oid FROM pg_class c
    WHERE c.relnamespace = {NSP} AND {_not_member("pg_class", "c")}
  UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t
    WHERE t.typnamespace = {NSP} AND {_not_member("pg_type", "t")}
  UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p
    WHERE p.pronamespace = {NSP} AND {_not_member("pg_proc", "p")}
  UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint WHERE connamespace = {NSP}
  UNION ALL SELECT 'pg_collation'::regclass, oid FROM pg_collation WHERE collnamespace = {NSP}
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = {NSP} AND NOT t.tgisinternal
  UNION ALL SELECT 'pg_attrdef'::regclass, d.oid FROM pg_attrdef d
    JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = {NSP}
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid FROM pg_rewrite r
    JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = {NSP}
  UNION ALL SELECT 'pg_policy'::regclass, p.oid FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = {NSP}
)
"""

COMMENTS_SQL = f"""{OWNED_CTE}
SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
FROM pg_description d JOIN owned o ON o.catalog = d.classoid AND o.oid = d.objoid
"""

# Each dependency of the schema's objects, named with pg_identify_object,
# whose identities are always schema-qualified: normalizing the schema's own
# name leaves a dependency on another schema (the template) visible.  The
# partition dependencies (P, S) show which index, constraint or trigger of a
# partition is attached to which of its parent's.
DEPENDENCIES_SQL = f"""{OWNED_CTE}
SELECT o.type, o.identity, r.type, r.identity, d.deptype::text
FROM pg_depend d
JOIN owned w ON w.catalog = d.classid AND w.oid = d.objid
CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
CROSS JOIN LATERAL pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) r
WHERE d.deptype IN ('n', 'a', 'i', 'P', 'S') AND coalesce(r.schema, '') NOT IN ('pg_catalog', 'pg_toast')
"""
