-- The named anomaly types: what each one watches (anomaly_inputs() derives the metric, one value
-- per 1-minute bucket), which way is bad, and how its event is told. A view over constants, not
-- a table: the list changes with the code that derives the metrics, so it ships (and upgrades)
-- with it.
--   direction   'up' or 'down': the way that is bad. A point the detector flags in the other
--               direction (a cache hit ratio going up, a query getting faster) is no anomaly.
--   min_change  the smallest departure from expected, in unit, that counts: a change the
--               detector finds surprising on a very steady series (a hit ratio from 99.9 % to
--               99.5 %) but no DBA would act on is not an event.
--   min_ratio   for 'up' types, actual must also be at least min_ratio x expected (NULL: no
--               such rule): a query from 100 to 120 ms a call is not a spike worth an event.
--   min_actual  for types named for a level ("high", "saturation", "pressure"), the actual value
--               must also be at least this (at most, for 'down' types; NULL: no such rule): CPU
--               use from 20 % to 40 % is a change, not high CPU use; 12 of 57 connections
--               after 6 is not a saturated pool. A hard_limit point is anomalous regardless.
--   hard_limit  a level that is an anomaly whatever the detector says (NULL: none): an XID age
--               half way to wraparound is bad even if it got there slowly, which a detector
--               of surprises learns as normal.
--   host_dependent  true when the inputs come from host metrics, which the collector has only
--               when it runs on the database host (collector/host.py); elsewhere no rows.
--   template    the event's sentence; record_anomalies() fills {what} (label and subject),
--               {actual}, {expected}, {instance} and {when} (anomaly_event_text()).
CREATE OR REPLACE VIEW pganalytics.anomaly_types AS
SELECT t.anomaly_type, t.label, t.unit, t.direction, t.min_change, t.min_ratio, t.hard_limit,
       t.host_dependent, t.subjects, t.description,
       '{what} ' || CASE t.direction WHEN 'up' THEN 'rose' ELSE 'fell' END
           || ' to {actual} (expected {expected}) on instance {instance} {when}' AS template,
       -- last: CREATE OR REPLACE VIEW adds columns only at the end
       CASE t.anomaly_type WHEN 'connection_pool_saturation' THEN 0.5 WHEN 'high_cpu_usage' THEN 0.8
                           WHEN 'memory_pressure' THEN 0.8 WHEN 'high_io_wait' THEN 0.1 END::float8 AS min_actual
FROM (VALUES
    ('execution_time_spike', 'mean execution time', 'ms', 'up', 1.0::float8, 1.5::float8, NULL::float8, false,
     'queryid:<queryid>',
     'mean execution time per call of one statement in the minute (pg_stat_statements deltas, all databases and users of the queryid)'),
    ('cache_hit_rate_drop', 'cache hit ratio', 'ratio', 'down', 0.02, NULL, NULL, false,
     'datname:<database>',
     'shared buffer hit ratio blks_hit / (blks_hit + blks_read) of one database in the minute (pg_stat_database), minutes with at least 100 block accesses'),
    ('lock_contention_increase', 'sessions waiting on a lock', 'sessions', 'up', 0.5, NULL, NULL, false,
     '',
     'average number of sessions waiting on a heavyweight lock at each collection of the minute (lock_waits; needs the daemon''s wait-event sampling)'),
    ('connection_pool_saturation', 'connection use', 'ratio', 'up', 0.05, NULL, 0.9, false,
     '',
     'backends connected to any database (pg_stat_database.numbackends) over the connections ordinary roles may open: max_connections - superuser_reserved_connections - reserved_connections from the settings history, or the instance label pooler_max_connections when that is lower'),
    ('high_io_wait', 'CPU time in I/O wait', 'ratio', 'up', 0.05, NULL, NULL, true,
     '',
     'share of CPU time the host spent waiting for I/O (/proc/stat iowait)'),
    ('high_cpu_usage', 'CPU use', 'ratio', 'up', 0.1, NULL, NULL, true,
     '',
     'share of CPU time the host was busy (/proc/stat: not idle, not iowait)'),
    ('memory_pressure', 'memory in use', 'ratio', 'up', 0.05, NULL, NULL, true,
     '',
     'share of the host''s memory not available to new work: 1 - MemAvailable / MemTotal'),
    ('replication_lag', 'replication lag', 'bytes', 'up', 16777216, NULL, NULL, false,
     'replica:<application_name>@<client_addr> | slot:<slot_name> | '''' (this standby)',
     'WAL not yet replayed: by each replica seen from the primary (pg_stat_replication replay lag), retained by each replication slot, or received but not replayed on this standby'),
    ('xid_wraparound_risk', 'XID age (share of the wraparound horizon)', 'ratio', 'up', 0.01, NULL, 0.5, false,
     'datname:<database>',
     'age(datfrozenxid) of one database over 2^31; half way (1.07 billion) is an anomaly whatever its trend'),
    ('temp_spill', 'temporary file writes', 'bytes/s', 'up', 100000, NULL, NULL, false,
     'datname:<database>',
     'bytes written to temporary files per second by one database (pg_stat_database.temp_bytes): sorts and hashes spilling past work_mem'),
    ('deadlocks', 'deadlocks', 'per minute', 'up', 1, NULL, NULL, false,
     'datname:<database>',
     'deadlocks detected in one database in the minute (pg_stat_database.deadlocks)'),
    ('checkpoint_pressure', 'requested checkpoints', 'per hour', 'up', 4, NULL, NULL, false,
     '',
     'checkpoints requested (WAL past max_wal_size, or CHECKPOINT) in the 15 minutes up to the minute, as a rate per hour; timed ones and buffers written are in the context')
) AS t (anomaly_type, label, unit, direction, min_change, min_ratio, hard_limit, host_dependent, subjects, description);
COMMENT ON VIEW pganalytics.anomaly_types IS
    'the named anomaly types: derived metric (anomaly_inputs), unit, bad direction, the smallest change that counts, the sentence template';
REVOKE ALL ON pganalytics.anomaly_types FROM PUBLIC;
GRANT SELECT ON pganalytics.anomaly_types TO pganalytics_admin;
