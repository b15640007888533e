-- When each instance was last seen (its newest snapshot), out of pganalytics.instances: the
-- ingest functions move it every 10 s of an instance's time, and as a column of instances
-- each move re-checked the row's CHECK constraints (four regular expressions) and added a
-- version to a table every lookup reads (~25 us a move; ~14 us of server time a frame at 1,000
-- instances x 250 series, measured). Here a row is two columns, with room on its page for a
-- HOT update; on Citus it is distributed with the instance's other rows, not a reference table
-- written on every node. A missing row is inserted by the first snapshot stored.
CREATE TABLE pganalytics.instance_seen (
    instance_id  int         NOT NULL PRIMARY KEY,
    last_seen_at timestamptz NOT NULL
) WITH (fillfactor = 50);
INSERT INTO pganalytics.instance_seen (instance_id, last_seen_at)
SELECT i.instance_id, i.last_seen_at FROM pganalytics.instances i WHERE i.last_seen_at IS NOT NULL;
ALTER TABLE pganalytics.instances DROP COLUMN last_seen_at;
-- downgrade: ALTER TABLE pganalytics.instances ADD COLUMN last_seen_at timestamptz;
-- downgrade: UPDATE pganalytics.instances i SET last_seen_at = s.last_seen_at FROM pganalytics.instance_seen s WHERE s.instance_id = i.instance_id;
-- downgrade: DROP TABLE pganalytics.instance_seen;
