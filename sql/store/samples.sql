-- depends: store/frame_values.sql
-- Raw samples as rows (instance_id, series_id, ts, value), as revision 0001 stored them: the
-- frames unnested through their layouts. For psql and drill-down; filter on instance_id and
-- ts, which reach the frames' index (read_series() is the fast path for one series).
CREATE OR REPLACE VIEW pganalytics.samples AS
SELECT f.instance_id, u.series_id, f.ts, u.value
FROM pganalytics.sample_frames f
JOIN pganalytics.sample_layouts l ON l.instance_id = f.instance_id AND l.layout_id = f.layout_id
CROSS JOIN LATERAL unnest(l.series_ids, pganalytics.frame_values(f.vals)) AS u(series_id, value);
GRANT SELECT ON pganalytics.samples TO pganalytics_admin;
