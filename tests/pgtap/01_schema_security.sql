-- Covers: the store's security defaults — roles exist and cannot log in, every function
-- pins search_path, the gateway role reaches only the api surface, PUBLIC executes nothing.
BEGIN;
SELECT plan(9);

SELECT has_schema('pganalytics');
SELECT has_role('pganalytics_collector');
SELECT has_role('pganalytics_gateway');
SELECT is(
    (SELECT count(*)::int FROM pg_roles WHERE rolname LIKE 'pganalytics\_%' AND rolcanlogin), 0,
    'group roles cannot log in');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'pganalytics'::regnamespace
      AND NOT coalesce(p.proconfig::text, '') LIKE '%search_path=%'
$$, 'every function pins search_path');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'pganalytics'::regnamespace
      AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'PUBLIC can execute no function');
SELECT ok(NOT has_table_privilege('pganalytics_gateway', 'pganalytics.api_tokens', 'SELECT'),
          'gateway cannot read token digests');
SELECT ok(NOT has_table_privilege('pganalytics_gateway', 'pganalytics.query_stats', 'SELECT'),
          'gateway reads the api surface, not tables');
SELECT ok(has_function_privilege('pganalytics_gateway', 'pganalytics.api_queries(text, int)', 'EXECUTE'),
          'gateway can call api_queries');

SELECT * FROM finish();
ROLLBACK;
