-- The values of a frame (sample_frames.vals: big-endian float8s, 8 bytes each) as a float8[]:
-- what the samples view and read_series() show. In numpy (plpython/rollup.py): SQL has no
-- way to turn 8 bytes into a float8 short of bit arithmetic on every value.
CREATE OR REPLACE FUNCTION pganalytics.frame_values(p_vals bytea)
RETURNS float8[]
LANGUAGE plpython3u
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $plpython$
#pganalytics:module rollup
if len(p_vals) % 8:
    plpy.error("frame_values: %d bytes is not a whole number of float8 values" % len(p_vals))
return rollup.frame_values(p_vals).tolist()
$plpython$;
REVOKE ALL ON FUNCTION pganalytics.frame_values(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.frame_values(bytea) TO pganalytics_admin;
