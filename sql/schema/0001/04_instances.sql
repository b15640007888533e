-- Monitored servers. conn_ref is a *reference*: a libpq service name or a DSN without a
-- password (secrets stay in .pgpass, the service file or the environment).
CREATE TABLE pganalytics.instances (
    instance_id        int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text NOT NULL UNIQUE
                       CONSTRAINT instances_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
    conn_ref           text NOT NULL
                       CONSTRAINT instances_conn_ref_no_password CHECK (
                           conn_ref !~* '(^|\s)password\s*='
                           AND conn_ref !~* '[?&]password='
                           AND conn_ref !~* '^postgres(ql)?://[^/@]*:[^/@]*@'),
    server_version_num int,
    labels             jsonb NOT NULL DEFAULT '{}'
                       CONSTRAINT instances_labels_object CHECK (jsonb_typeof(labels) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz
);
GRANT SELECT (instance_id, name, conn_ref, server_version_num), UPDATE (server_version_num) ON pganalytics.instances TO pganalytics_collector;
