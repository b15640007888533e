"""Replaceable SQL objects: functions and views, one `CREATE OR REPLACE` file each.

Unlike run-once DDL (sql/schema/, frozen once released), these files are re-applied on every
upgrade that reaches head, so an upgrade from any revision ends in the same catalog as a fresh
install. A hash of the applied bundle is kept in pganalytics.meta: an upgrade with nothing new
changes nothing.

File conventions
- `sql/{ingest,store,analytics,api}/NAME.sql`, applied in that directory order, then by name;
  a `-- depends: analytics/other.sql` line orders a file after another.
- `NAME.pgNN.sql` replaces `NAME.sql` on servers whose major version is >= NN.
- A line `#pganalytics:module NAME` inside a PL/Python body is replaced by a loader that
  runs plpython/NAME.py once per backend (cached in GD) and binds it to NAME.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

SCHEMA = "pganalytics"
DIRECTORIES = ("ingest", "store", "analytics", "api")
_VARIANT = re.compile(r"^(?P<name>[a-z0-9_]+)(?:\.pg(?P<min>\d+))?\.sql$")
_DEPENDS = re.compile(r"^--\s*depends:\s*(\S+)\s*$", re.M)
_CREATE = re.compile(r"^CREATE OR REPLACE (FUNCTION|PROCEDURE|VIEW)\s+(pganalytics\.[a-z0-9_]+)\b", re.M)
_REVOKE = re.compile(r"^REVOKE ALL ON (?:FUNCTION|PROCEDURE) (pganalytics\.[a-z0-9_]+)\((.*)\) FROM PUBLIC;$", re.M)
_MODULE = re.compile(r"^(?P<indent>[ \t]*)#pganalytics:module (?P<name>[a-z_][a-z0-9_]*)[ \t]*$", re.M)


@dataclass(frozen=True)
class SqlFile:
    key: str  # e.g. "analytics/plan_nodes.sql" (the variant-independent name)
    path: str  # the file actually used
    text: str


def _sql_root():
    return resources.files("pganalytics.sql")


def plpython_source(module: str) -> str:
    return resources.files("pganalytics.plpython").joinpath(f"{module}.py").read_text()


def _expand_modules(sql: str) -> str:
    """Inline plpython/NAME.py into the function body, executed once per backend."""

    def loader(m: re.Match) -> str:
        indent, name = m.group("indent"), m.group("name")
        source = plpython_source(name)
        key = f"pganalytics.{name}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"
        lines = [
            f"if {key!r} not in GD:",
            "    import types as _types",
            f"    _mod = _types.ModuleType({('pganalytics.' + name)!r})",
            f"    exec(compile({source!r}, {('plpython/' + name + '.py')!r}, 'exec'), _mod.__dict__)",
            f"    GD[{key!r}] = _mod",
            f"{name} = GD[{key!r}]",
        ]
        return "\n".join(indent + line for line in lines)

    return _MODULE.sub(loader, sql)


def _object_of(f: SqlFile) -> tuple[str, str, str]:
    """(kind, qualified name, argument types) of the one object a file defines. Functions
    name their argument types in the file's `REVOKE ALL ON FUNCTION ... FROM PUBLIC` line
    (every function has one: PUBLIC executes nothing)."""
    created = _CREATE.findall(f.text)
    if len(created) != 1:
        raise ValueError(f"sql/{f.path} must define exactly one function or view, found {len(created)}")
    kind, name = created[0]
    if kind == "VIEW":
        return kind, name, ""
    revokes = [args for n, args in _REVOKE.findall(f.text) if n == name]
    if len(revokes) != 1:
        raise ValueError(f"sql/{f.path} needs one line `REVOKE ALL ON FUNCTION {name}(<types>) FROM PUBLIC;`")
    return kind, name, revokes[0]


def select_files(server_major: int) -> list[SqlFile]:
    """The files to apply on a server of this major version, in dependency order."""
    chosen: dict[str, tuple[int, str, str]] = {}
    root = _sql_root()
    for directory in DIRECTORIES:
        folder = root.joinpath(directory)
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            m = _VARIANT.match(entry.name)
            if not m:
                continue
            min_major = int(m.group("min") or 0)
            if min_major > server_major:
                continue
            key = f"{directory}/{m.group('name')}.sql"
            if key not in chosen or chosen[key][0] < min_major:
                chosen[key] = (min_major, f"{directory}/{entry.name}", entry.read_text())
    files = {k: SqlFile(k, p, _expand_modules(t)) for k, (_, p, t) in chosen.items()}
    for f in files.values():
        _object_of(f)  # one object per file, or a clear error before anything runs
    return _order(files)


def _order(files: dict[str, SqlFile]) -> list[SqlFile]:
    ordered: list[SqlFile] = []
    state: dict[str, str] = {}

    def visit(key: str, chain: tuple[str, ...]) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise ValueError("dependency cycle: " + " -> ".join(chain + (key,)))
        if key not in files:
            raise ValueError(f"{chain[-1]} depends on missing {key}")
        state[key] = "visiting"
        for dep in _DEPENDS.findall(files[key].text):
            visit(dep, chain + (key,))
        state[key] = "done"
        ordered.append(files[key])

    for key in files:  # already directory-then-name order
        visit(key, ())
    return ordered


def bundle_hash(files: list[SqlFile]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.key.encode() + b"\0" + f.text.encode() + b"\0")
    return digest.hexdigest()


# Our replaceable objects: every function and view of the schema (extension members aside).
_OURS = """
    SELECT 'pg_proc'::regclass::oid AS classid, p.oid AS objid FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'pganalytics'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'pg_class'::regclass::oid, c.oid FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relkind IN ('v', 'm')
"""

# Objects of anyone else's that depend on ours (a user's view over api_instances, a function
# of theirs with a BEGIN ATOMIC body calling ours...). A view's dependency is recorded on its
# rewrite rule; internal and extension dependencies (a view's own row type) don't count.
_FOREIGN_DEPENDENTS = f"""
    WITH ours AS ({_OURS})
    SELECT DISTINCT pg_catalog.pg_describe_object(
                        CASE WHEN r.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END,
                        coalesce(r.ev_class, d.objid), 0)  -- a view, not its _RETURN rule
                    || ' depends on ' || pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)
    FROM pg_catalog.pg_depend d
    JOIN ours o ON o.classid = d.refclassid AND o.objid = d.refobjid
    LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
    WHERE d.deptype = 'n'
      AND NOT EXISTS (SELECT FROM ours x
                      WHERE (x.classid = d.classid AND x.objid = d.objid)
                         OR (r.oid IS NOT NULL AND x.classid = 'pg_class'::regclass AND x.objid = r.ev_class))
    ORDER BY 1
"""

# Dropping all of ours: safe only once no foreign object depends on them (checked first),
# then CASCADE only reaches our own objects.
_DROP_ALL = """
DO $drop$
DECLARE obj record;
BEGIN
    FOR obj IN
        SELECT c.oid::regclass::text AS name, c.relkind
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relkind IN ('v', 'm')
    LOOP
        EXECUTE pg_catalog.format('DROP %s IF EXISTS %s CASCADE',
            CASE obj.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END, obj.name);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure::text AS name, p.prokind
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'pganalytics'::regnamespace
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE pg_catalog.format('DROP %s IF EXISTS %s CASCADE',
            CASE obj.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, obj.name);
    END LOOP;
END
$drop$;
"""

# CREATE OR REPLACE cannot change a function's result type or parameter names, or drop or
# rename a view's columns: such a file needs its object dropped first.
_RESHAPE_STATES = {"42P13", "42P16", "42809"}

OWNER = "pganalytics_owner"


class DependentObjectsError(RuntimeError):
    """Objects outside the store depend on replaceable objects that must be dropped."""


def schema_exists(cur) -> bool:
    cur.execute("SELECT to_regnamespace(%s) IS NOT NULL", (SCHEMA,))
    return cur.fetchone()[0]


def _check_no_foreign_dependents(cur, why: str) -> None:
    cur.execute(_FOREIGN_DEPENDENTS)
    found = [r[0] for r in cur.fetchall()]
    if found:
        raise DependentObjectsError(
            f"{why}, but objects outside the store depend on them: {'; '.join(found)}. "
            "Drop those objects, run this again, then re-create them (nothing was changed)")


def drop_all(cur) -> None:
    """Drop every replaceable object; refuses (and changes nothing) when a user's object
    depends on one of them, instead of dropping it silently with CASCADE."""
    if not schema_exists(cur):
        return
    _check_no_foreign_dependents(cur, "this migration drops the store's functions and views")
    cur.execute(_DROP_ALL)
    cur.execute("DELETE FROM pganalytics.meta WHERE key = 'replaceable_hash'")


def _run_files(cur, files: list[SqlFile]) -> None:
    for f in files:
        try:
            cur.execute(f.text)
        except Exception as exc:
            raise RuntimeError(f"applying sql/{f.path} failed: {exc}") from exc


def _identity(cur, f: SqlFile):
    """(classid, objid) of the one object a file defines, once it exists."""
    kind, name, args = _object_of(f)
    if kind == "VIEW":
        cur.execute("SELECT 'pg_class'::regclass::oid, to_regclass(%s)::oid", (name,))
    else:
        cur.execute("SELECT 'pg_proc'::regclass::oid, to_regprocedure(%s)::oid", (f"{name}({args})",))
    return cur.fetchone()


def _drop_obsolete(cur, files: list[SqlFile]) -> None:
    """Drop our objects that no file defines any more (a removed view, a changed signature),
    without CASCADE: a user's dependent object stops the upgrade with a clear message."""
    wanted = {_identity(cur, f) for f in files}
    cur.execute(_OURS)
    for classid, objid in cur.fetchall():
        if (classid, objid) in wanted:
            continue
        cur.execute("SELECT pg_catalog.pg_describe_object(%s::oid, %s::oid, 0)", (classid, objid))
        what = cur.fetchone()[0]
        cur.execute("SELECT CASE WHEN %s::oid = 'pg_class'::regclass::oid THEN 'VIEW ' || %s::oid::regclass::text "
                    "ELSE 'ROUTINE ' || %s::oid::regprocedure::text END", (classid, objid, objid))
        statement = cur.fetchone()[0]
        try:
            cur.execute("SAVEPOINT pga_obsolete")
            cur.execute(f"DROP {statement}")  # names from the catalog, quoted by regclass/regprocedure
            cur.execute("RELEASE SAVEPOINT pga_obsolete")
        except Exception as exc:
            cur.execute("ROLLBACK TO SAVEPOINT pga_obsolete")
            raise DependentObjectsError(
                f"{what} is no longer part of the store and must be dropped, but: {exc}. Drop "
                "the objects that depend on it and run this again (nothing was changed)") from exc


def set_ownership(cur) -> None:
    """Everything in the schema belongs to the NOLOGIN, non-superuser owner role, so every
    SECURITY DEFINER function runs with no more than the store's own rights. PL/Python
    (untrusted) functions stay with the superuser who created them (only a superuser may own
    one) and none is SECURITY DEFINER (a catalog test checks it); the owner may execute them.
    A no-op for what is already so."""
    cur.execute("SELECT to_regrole(%s) IS NOT NULL", (OWNER,))
    if not cur.fetchone()[0]:
        return  # below revision 0004
    cur.execute(f"""
        DO $own$
        DECLARE obj record;
        BEGIN
            IF (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'pganalytics')
               <> '{OWNER}'::regrole THEN
                ALTER SCHEMA pganalytics OWNER TO {OWNER};
            END IF;
            FOR obj IN
                SELECT c.oid::regclass::text AS name, c.relkind FROM pg_catalog.pg_class c
                WHERE c.relnamespace = 'pganalytics'::regnamespace AND c.relowner <> '{OWNER}'::regrole
                  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            LOOP
                EXECUTE pg_catalog.format('ALTER %s %s OWNER TO {OWNER}',
                    CASE WHEN obj.relkind IN ('v') THEN 'VIEW'
                         WHEN obj.relkind = 'm' THEN 'MATERIALIZED VIEW'
                         WHEN obj.relkind = 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, obj.name);
            END LOOP;
            FOR obj IN
                SELECT p.oid::regprocedure::text AS name FROM pg_catalog.pg_proc p
                JOIN pg_catalog.pg_language l ON l.oid = p.prolang
                WHERE p.pronamespace = 'pganalytics'::regnamespace AND p.proowner <> '{OWNER}'::regrole
                  AND l.lanpltrusted
            LOOP
                EXECUTE pg_catalog.format('ALTER ROUTINE %s OWNER TO {OWNER}', obj.name);
            END LOOP;
            -- The rest (PL/Python) the owner's functions may call.
            FOR obj IN
                SELECT p.oid::regprocedure::text AS name FROM pg_catalog.pg_proc p
                WHERE p.pronamespace = 'pganalytics'::regnamespace AND p.proowner <> '{OWNER}'::regrole
                  AND NOT pg_catalog.has_function_privilege('{OWNER}', p.oid, 'EXECUTE')
            LOOP
                EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO {OWNER}', obj.name);
            END LOOP;
        END
        $own$;
    """)


def apply_all(cur) -> bool:
    """Create or replace every replaceable object unless this exact bundle is already applied.

    In place (CREATE OR REPLACE keeps every object's OID and the grants and objects of users
    that depend on it); when a file changes an object's shape, the objects are dropped and
    re-created, but only if no object outside the store depends on them. Objects no file
    defines any more are dropped. Returns True when something was (re)applied."""
    cur.execute("SELECT current_setting('server_version_num')::int / 10000")
    files = select_files(cur.fetchone()[0])
    wanted = bundle_hash(files)
    cur.execute("SELECT value FROM pganalytics.meta WHERE key = 'replaceable_hash'")
    row = cur.fetchone()
    if row and row[0] == wanted:
        return False
    # plpgsql bodies bind late anyway; this lets SQL functions refer to later files too.
    cur.execute("SET LOCAL check_function_bodies = off")
    cur.execute("SAVEPOINT pga_replace")
    try:
        _run_files(cur, files)
        cur.execute("RELEASE SAVEPOINT pga_replace")
    except RuntimeError as exc:
        cur.execute("ROLLBACK TO SAVEPOINT pga_replace")
        if getattr(exc.__cause__, "sqlstate", None) not in _RESHAPE_STATES:
            raise
        _check_no_foreign_dependents(cur, f"this upgrade changes the shape of store objects ({exc.__cause__})")
        cur.execute(_DROP_ALL)
        _run_files(cur, files)
    _drop_obsolete(cur, files)
    cur.execute("RESET check_function_bodies")
    cur.execute(
        "INSERT INTO pganalytics.meta (key, value) VALUES ('replaceable_hash', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (wanted,))
    return True
