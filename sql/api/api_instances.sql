-- Monitored instances as clients see them (no connection references).
CREATE OR REPLACE VIEW pganalytics.api_instances AS
SELECT i.name, i.server_version_num, i.labels, i.created_at, s.last_seen_at,
       coalesce(p.query_entries, 0) AS query_entries
FROM pganalytics.instances i
LEFT JOIN pganalytics.instance_seen s ON s.instance_id = i.instance_id
LEFT JOIN pganalytics.pgss_info p ON p.instance_id = i.instance_id;  -- counted at ingest
COMMENT ON VIEW pganalytics.api_instances IS
    'API (GET /api/v2/instances): monitored instances (name, version, labels, first and last seen, '
    'pg_stat_statements entries stored), without their connection references.';
REVOKE ALL ON pganalytics.api_instances FROM PUBLIC;
GRANT SELECT ON pganalytics.api_instances TO pganalytics_gateway, pganalytics_admin;
