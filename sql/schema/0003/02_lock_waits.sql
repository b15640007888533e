-- Sessions worth a look at each collection: backends waiting on a heavyweight lock
-- (kind 'lock_wait': pid is the waiter; blocking_pids its direct blockers from
-- pg_blocking_pids(); root_blocker_* the blocker at the head of its chain, i.e. one not
-- itself waiting on a lock, with the oldest transaction; root_blocker_pids every root) and
-- sessions idle in a transaction longer than the collector's threshold
-- (kind 'idle_in_transaction'). Ages are in seconds at collected_at; xid_age/xmin_age are
-- age(backend_xid)/age(backend_xmin). root_blocker_pid 0 is a prepared transaction.
CREATE TABLE pganalytics.lock_waits (
    instance_id             int         NOT NULL,
    collected_at            timestamptz NOT NULL,
    kind                    text        NOT NULL
                            CONSTRAINT lock_waits_kind CHECK (kind IN ('lock_wait', 'idle_in_transaction')),
    pid                     int         NOT NULL,
    datname                 text,
    usename                 text,
    application_name        text,
    backend_type            text,
    state                   text,
    queryid                 bigint,
    wait_event_type         text,
    wait_event              text,
    xact_age_s              float8,
    state_age_s             float8,
    xid_age                 int,
    xmin_age                int,
    lock_wait_s             float8,
    blocking_pids           int[],
    root_blocker_pids       int[],
    root_blocker_pid        int,
    root_blocker_state      text,
    root_blocker_queryid    bigint,
    root_blocker_xact_age_s float8,
    chain_depth             int,
    PRIMARY KEY (instance_id, collected_at, kind, pid)
);
CREATE INDEX lock_waits_collected_brin ON pganalytics.lock_waits USING brin (collected_at);
GRANT SELECT ON pganalytics.lock_waits TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.lock_waits;
