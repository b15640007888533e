-- Covers: the store's security defaults — roles exist and cannot log in, every function
-- pins search_path, the gateway role reaches only the api surface, PUBLIC executes nothing,
-- SECURITY DEFINER functions belong to the non-superuser owner role.
BEGIN;
SELECT plan(12);

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
SELECT ok(has_function_privilege('pganalytics_gateway', 'pganalytics.api_authenticate(bytea)', 'EXECUTE'),
          'gateway can call api_authenticate');
SELECT has_role('pganalytics_owner');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
    WHERE p.pronamespace = 'pganalytics'::regnamespace AND p.prosecdef
      AND (r.rolsuper OR r.rolname <> 'pganalytics_owner')
$$, 'every SECURITY DEFINER function is owned by pganalytics_owner, not a superuser');
SELECT ok(NOT has_table_privilege('pganalytics_collector', 'pganalytics.samples', 'INSERT'),
          'the collector writes samples only through ingest_samples() (the ledger)');

SELECT * FROM finish();
ROLLBACK;
