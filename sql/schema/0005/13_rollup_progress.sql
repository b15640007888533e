-- Per instance: every minute before rolled_until is in rollups_1m (and each coarser bucket
-- that ends by then in its table). Advanced by maintain() in the transaction that writes the
-- rollups, so a maintain() killed halfway leaves it, and the rollups, as they were.
CREATE TABLE pganalytics.rollup_progress (
    instance_id  int         PRIMARY KEY REFERENCES pganalytics.instances ON DELETE CASCADE,
    rolled_until timestamptz NOT NULL
);
GRANT SELECT ON pganalytics.rollup_progress TO pganalytics_admin;
-- downgrade: DROP TABLE pganalytics.rollup_progress;
