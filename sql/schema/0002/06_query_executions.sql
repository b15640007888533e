-- Plans of individual queries (EXPLAIN FORMAT JSON, generic or analysed) and the parameters
-- they ran with. plan_hash identifies the plan's shape so plan changes are visible.
CREATE TABLE pganalytics.query_executions (
    instance_id    int         NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    execution_id   bigint      GENERATED ALWAYS AS IDENTITY,
    queryid        bigint      NOT NULL,
    dbid           oid,
    collected_at   timestamptz NOT NULL DEFAULT now(),
    plan_kind      text        NOT NULL DEFAULT 'generic'
                   CONSTRAINT query_executions_plan_kind CHECK (plan_kind IN ('generic', 'custom', 'analyze')),
    plan_hash      bigint,
    duration_ms    float8,
    query_params   jsonb       CONSTRAINT query_executions_params_array CHECK (query_params IS NULL OR jsonb_typeof(query_params) IN ('array', 'object')),
    execution_plan jsonb       NOT NULL
                   CONSTRAINT query_executions_plan_shape CHECK (jsonb_path_exists(execution_plan, '$[0]."Plan"."Node Type"')),
    PRIMARY KEY (instance_id, execution_id)
);
CREATE INDEX query_executions_query ON pganalytics.query_executions (instance_id, queryid, collected_at);
