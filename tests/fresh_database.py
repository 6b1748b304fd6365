"""A freshly migrated PostgreSQL database for every test, in milliseconds.

The migrations run once per session into a template database. Before each test the
session's database is brought back to the template's exact state: when its schema still
matches the template's (the usual case), every row is deleted, the rows the migrations
insert are put back and the sequences rewound, in one transaction of a few tens of
milliseconds; when a test changed the schema (an emptied or downgraded database, a
dropped trigger), the database is recreated from the template with CREATE DATABASE ...
TEMPLATE, a few tenths of a second. TRUNCATE would be simpler but costs about a second
here: it creates new files for every table and index.
"""

from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

# Everything a test could change in the schema, as one digest: tables and columns,
# indexes, constraints, triggers (with their enabled state), functions, enum values,
# grants, and the migration revision.
FINGERPRINT = """
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
  SELECT concat_ws(':', 'c', table_name, column_name, data_type, column_default, is_nullable)
    AS item FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'i:' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT concat_ws(':', 'k', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT concat_ws(':', 't', tgname, tgenabled, pg_get_triggerdef(oid))
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT concat_ws(':', 'f', proname, md5(prosrc))
    FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT concat_ws(':', 'e', enumtypid::regtype, enumlabel, enumsortorder) FROM pg_enum
  UNION ALL SELECT concat_ws(':', 'g', table_name, grantee, privilege_type)
    FROM information_schema.role_table_grants WHERE table_schema = 'public'
  UNION ALL SELECT 'v:' || version_num FROM alembic_version
) AS schema
"""
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
SEQUENCES = (
    "SELECT sequencename, coalesce(last_value, start_value), last_value IS NOT NULL "
    "FROM pg_sequences WHERE schemaname = 'public'"
)
KEEP = "alembic_version"  # part of the fingerprint: equal means already right


def quoted(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Template:
    """What a freshly migrated database holds, read once from the template."""

    name: str
    fingerprint: str
    tables: tuple[str, ...]
    seeds: dict[str, str]  # table -> its rows as a JSON array
    sequences: tuple[tuple[str, int, bool], ...]

    @classmethod
    def read(cls, engine: Engine, name: str) -> "Template":
        """The template database's state (call before it is copied: it must be idle)."""
        with engine.connect() as conn:
            tables = tuple(row[0] for row in conn.execute(text(TABLES)) if row[0] != KEEP)
            seeds = {}
            for table in tables:
                rows = conn.execute(text(f"SELECT json_agg(t)::text FROM {quoted(table)} t"))
                if (seed := rows.scalar()) is not None:
                    seeds[table] = seed
            sequences = tuple(
                (str(name_), int(value), bool(called))
                for name_, value, called in conn.execute(text(SEQUENCES))
            )
            return cls(name, fingerprint(conn), tables, seeds, sequences)

    def restore(self, conn: Connection) -> bool:
        """Bring the database back to this state if its schema is unchanged; False if not."""
        if fingerprint(conn) != self.fingerprint:
            return False
        # A replica session fires no user triggers (the audit trail's append-only guard)
        # and checks no foreign keys, so rows go in any order.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("; ".join(f"DELETE FROM {quoted(t)}" for t in self.tables)))
        for table, rows in self.seeds.items():
            conn.execute(
                text(
                    f"INSERT INTO {quoted(table)} "
                    f"SELECT * FROM json_populate_recordset(NULL::{quoted(table)}, :rows)"
                ),
                {"rows": rows},
            )
        if self.sequences:
            conn.execute(
                text(
                    "; ".join(
                        f"SELECT setval('{quoted(seq)}', {value}, {str(called).lower()})"
                        for seq, value, called in self.sequences
                    )
                )
            )
        return True


def fingerprint(conn: Connection) -> str | None:
    """The schema's digest, or None when it has no migration revision at all."""
    if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar() is None:
        return None
    return str(conn.execute(text(FINGERPRINT)).scalar())


def reset(*, admin: Engine, url: str, name: str, template: Template) -> None:
    """Make database `name` (at `url`) a fresh copy of the template, the fast way if possible."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            # Whatever the previous test left connected goes, as DROP DATABASE ... FORCE would.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            if template.restore(conn):
                return
    except Exception:  # e.g. the database is gone: recreate it below
        pass
    finally:
        engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {quoted(name)} TEMPLATE {quoted(template.name)}"))
