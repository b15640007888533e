"""The SQL shim returns exactly what the plpython/ module returns for the same input."""
import random

from pganalytics.plpython.robust import robust_zscore

rng = random.Random(7)
CASES: list[tuple[list[float | None], float | None]] = [([rng.gauss(100, 15) for _ in range(rng.randint(1, 40))], rng.gauss(100, 40)) for _ in range(30)]
CASES += [([5.0, 5.0, 5.0], 5.0), ([5.0, 5.0, 5.0], 7.0), ([], 1.0), ([1.0, None, 3.0], 2.0),
          ([1.0, 2.0], None)]


def test_robust_zscore_parity(store_conn):
    for baseline, value in CASES:
        sql = store_conn.execute("SELECT pganalytics.robust_zscore(%s::float8[], %s::float8)",
                                 (baseline, value)).fetchone()[0]
        assert sql == robust_zscore(baseline, value), (baseline, value)


def test_module_is_loaded_once_per_backend(store_conn):
    """The module source runs once per backend and is then reused from GD."""
    notices = []
    store_conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    for _ in range(3):
        store_conn.execute("SELECT pganalytics.robust_zscore(ARRAY[1,2,3]::float8[], 2)")
    store_conn.execute("DO $$ plpy.notice(','.join(sorted(k for k in GD if k.startswith('pganalytics.')))) $$ "
                       "LANGUAGE plpython3u")
    assert len(notices) == 1
    loaded = notices[0].split(",")
    assert len(loaded) == 1 and loaded[0].startswith("pganalytics.robust:")
