-- From revision 0008 a frame's layout is part of its identity (the frames are their own
-- delivery ledger, see 02), so one series set must have one layout id: register_layouts() now
-- serialises the registration of an instance's new layouts, and this merges the duplicates two
-- concurrent registrations could leave before (same instance, same series in the same order):
-- their frames move to the lowest id, which is the one register_layouts() always returned.
CREATE TEMP TABLE duplicate_layouts ON COMMIT DROP AS
SELECT l.instance_id, l.layout_id, k.keep
FROM pganalytics.sample_layouts l
JOIN (SELECT instance_id, series_ids, min(layout_id) AS keep FROM pganalytics.sample_layouts
      GROUP BY instance_id, series_ids HAVING count(*) > 1) k
  ON k.instance_id = l.instance_id AND k.series_ids = l.series_ids AND l.layout_id <> k.keep;
UPDATE pganalytics.sample_frames f SET layout_id = d.keep
FROM duplicate_layouts d WHERE f.instance_id = d.instance_id AND f.layout_id = d.layout_id;
DELETE FROM pganalytics.sample_layouts l USING duplicate_layouts d
WHERE l.instance_id = d.instance_id AND l.layout_id = d.layout_id;
-- downgrade: SELECT 'merged layouts stay merged: they were the same series set';
