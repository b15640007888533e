-- One row per completed maintain() run: what it did, and the snapshot its reads used. The
-- next run treats frames whose transaction that snapshot could not see, in minutes already
-- rolled up, as late and rebuilds those minutes: no lock between ingest and maintain().
CREATE TABLE pganalytics.maintain_runs (
    run_id      bigserial   PRIMARY KEY,  -- a sequence, not an identity: Citus reference tables refuse identities
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    seen        pg_snapshot NOT NULL,
    summary     jsonb       NOT NULL
);
GRANT SELECT ON pganalytics.maintain_runs TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.maintain_runs;
