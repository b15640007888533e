-- Identity columns block distributing a table on Citus ("cannot complete operation on a table
-- with identity column"): the four ids become plain columns whose default is a sequence the
-- table owns. Same numbers, same behaviour for INSERTs that leave the id out; an explicit id
-- is now accepted (only the store's own functions insert into these tables).
DO $ids$
DECLARE
    t record;
    seq text;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('instances', 'instance_id'), ('series', 'series_id'),
                                   ('api_tokens', 'token_id'), ('query_executions', 'execution_id')) v(tab, col)
    LOOP
        seq := t.tab || '_' || t.col || '_seq';
        EXECUTE pg_catalog.format('ALTER TABLE pganalytics.%I ALTER COLUMN %I DROP IDENTITY', t.tab, t.col);
        EXECUTE pg_catalog.format('CREATE SEQUENCE pganalytics.%I AS %s OWNED BY pganalytics.%I.%I',
            seq, CASE t.col WHEN 'execution_id' THEN 'bigint' ELSE 'int' END, t.tab, t.col);
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.setval(%L, coalesce((SELECT max(%I) FROM pganalytics.%I), 0) + 1, false)',
            'pganalytics.' || seq, t.col, t.tab);
        EXECUTE pg_catalog.format('ALTER TABLE pganalytics.%I ALTER COLUMN %I SET DEFAULT pg_catalog.nextval(%L::regclass)',
            t.tab, t.col, 'pganalytics.' || seq);
    END LOOP;
END
$ids$;
-- downgrade: DO $ids$ DECLARE t record; BEGIN FOR t IN SELECT * FROM (VALUES ('instances', 'instance_id'), ('series', 'series_id'), ('api_tokens', 'token_id'), ('query_executions', 'execution_id')) v(tab, col) LOOP EXECUTE pg_catalog.format('ALTER TABLE pganalytics.%I ALTER COLUMN %I DROP DEFAULT', t.tab, t.col); EXECUTE pg_catalog.format('DROP SEQUENCE pganalytics.%I', t.tab || '_' || t.col || '_seq'); EXECUTE pg_catalog.format('ALTER TABLE pganalytics.%I ALTER COLUMN %I ADD GENERATED ALWAYS AS IDENTITY', t.tab, t.col); EXECUTE pg_catalog.format('SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(%L, %L), coalesce((SELECT max(%I) FROM pganalytics.%I), 0) + 1, false)', 'pganalytics.' || t.tab, t.col, t.col, t.tab); END LOOP; END $ids$;
