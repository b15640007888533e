"""Replaceable SQL objects: functions and views, one `CREATE OR REPLACE` file each.

Unlike run-once DDL (sql/schema/, frozen once released), these files are re-applied on every
upgrade that reaches head, so an upgrade from any revision ends in the same catalog as a fresh
install. A hash of the applied bundle is kept in pganalytics.meta: an upgrade with nothing new
changes nothing.

File conventions
- `sql/{ingest,analytics,api}/NAME.sql`, applied in that directory order, then by name;
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
DIRECTORIES = ("ingest", "analytics", "api")
_VARIANT = re.compile(r"^(?P<name>[a-z0-9_]+)(?:\.pg(?P<min>\d+))?\.sql$")
_DEPENDS = re.compile(r"^--\s*depends:\s*(\S+)\s*$", re.M)
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


# Every function and view in the schema is replaceable (tables never depend on them: run-once
# DDL may not use functions in defaults or triggers), so dropping them all is safe.
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


def schema_exists(cur) -> bool:
    cur.execute("SELECT to_regnamespace(%s) IS NOT NULL", (SCHEMA,))
    return cur.fetchone()[0]


def drop_all(cur) -> None:
    if not schema_exists(cur):
        return
    cur.execute(_DROP_ALL)
    cur.execute("DELETE FROM pganalytics.meta WHERE key = 'replaceable_hash'")


def apply_all(cur) -> bool:
    """Re-create every replaceable object unless this exact bundle is already applied.

    Returns True when something was (re)applied."""
    cur.execute("SELECT current_setting('server_version_num')::int / 10000")
    files = select_files(cur.fetchone()[0])
    wanted = bundle_hash(files)
    cur.execute("SELECT value FROM pganalytics.meta WHERE key = 'replaceable_hash'")
    row = cur.fetchone()
    if row and row[0] == wanted:
        return False
    cur.execute(_DROP_ALL)
    # plpgsql bodies bind late anyway; this lets SQL functions refer to later files too.
    cur.execute("SET LOCAL check_function_bodies = off")
    for f in files:
        try:
            cur.execute(f.text)
        except Exception as exc:
            raise RuntimeError(f"applying sql/{f.path} failed: {exc}") from exc
    cur.execute("RESET check_function_bodies")
    cur.execute(
        "INSERT INTO pganalytics.meta (key, value) VALUES ('replaceable_hash', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (wanted,))
    return True
