"""SQL text helpers: the target placeholder, and parsing what PostgreSQL prints.

Every name that reaches SQL goes through ``naming.quote_ident`` or was quoted by
PostgreSQL itself (``quote_ident()`` in the catalog queries); nothing here
searches definitions for the schema name to replace it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from schemaiso.errors import CloneError
from schemaiso.naming import quote_ident, quote_literal

# Placeholders for the target schema in prepared text.  PostgreSQL text can
# never contain NUL, so no catalog definition can collide with them.
TARGET = "\0target\0"  # the quoted target schema, as an identifier
TARGET_IN_LITERAL = "\0target-in-literal\0"  # the same, inside a single-quoted string literal


def for_target(sql: str, target: str) -> str:
    """Prepared text with the placeholders filled in for the schema ``target``."""
    ident = quote_ident(target)
    return sql.replace(TARGET, ident).replace(TARGET_IN_LITERAL, ident.replace("'", "''"))


def split_search_path(value: str) -> list[str]:
    """Schema names in a stored search_path value, by PostgreSQL's rules.

    Unquoted names fold to lower case; quoted names keep their case and
    doubled quotes.  Used to repoint functions' ``SET search_path``.
    """
    names: list[str] = []
    index, length = 0, len(value)
    while index < length:
        while index < length and value[index].isspace():
            index += 1
        if index < length and value[index] == '"':
            end = index + 1
            name = []
            while end < length:
                if value[end] == '"':
                    if value.startswith('""', end):
                        name.append('"')
                        end += 2
                        continue
                    break
                name.append(value[end])
                end += 1
            names.append("".join(name))
            index = value.find(",", end)
        else:
            end = value.find(",", index)
            names.append(value[index : end if end >= 0 else length].strip().lower())
            index = end
        if index < 0:
            break
        index += 1
    return names


def sql_options(options: Iterable[str], prefix: str = "") -> list[str]:
    """Storage parameters ('name=value' as stored) as SQL ``name = 'value'`` items."""
    items = []
    for option in options:
        name, _, value = option.partition("=")
        items.append(f"{prefix}{name} = {quote_literal(value)}")
    return items


def unexpected(problem: str) -> CloneError:
    """The error for a catalog shape the engine does not expect: the user cannot fix it, only report it."""
    return CloneError(
        f"schemaiso: {problem}. The clone engine does not expect this: report this message with"
        " your PostgreSQL version and the definition of the object named."
    )


def strip_prefix(text: str, prefix: str, what: str) -> str:
    """The rest of ``text`` after an exactly expected prefix; anything else is an unknown format."""
    if not text.startswith(prefix):
        raise unexpected(
            f"cannot parse the definition of {what}: expected it to start with {prefix!r}"
        )
    return text[len(prefix) :]


def find_unquoted(text: str, needle: str) -> int:
    """Index of ``needle`` in ``text``, skipping double-quoted identifiers (a column may be named " ON ")."""
    quoted = False
    for index in range(len(text)):
        char = text[index]
        if char == '"':
            quoted = not quoted
        elif not quoted and text.startswith(needle, index):
            return index
    return -1


def names_schema(text: str, schema: str) -> bool:
    """Whether ``text`` mentions ``schema.`` as a qualifier, quoted or not.

    Used on text the clone copies without PostgreSQL resolving its names
    (function bodies, string constants inside definitions): such a reference
    keeps pointing at the template in every clone.
    """
    name = re.escape(schema)
    quoted = re.escape(quote_ident(schema))
    pattern = rf'(?:(?<![\w$"]){name}|{quoted})\s*\.'
    return re.search(pattern, text, flags=0 if schema != schema.lower() else re.I) is not None
