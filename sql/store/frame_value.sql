-- Value k (1-based) of a frame's values, or NULL past the end: one series out of a frame
-- without decoding the others (read_series' raw path). Plain SQL: 8 bytes to a float8 by the
-- IEEE 754 fields (finite values; NaN and infinities read as NULL).
CREATE OR REPLACE FUNCTION pganalytics.frame_value(p_vals bytea, p_k int)
RETURNS float8
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN e = 2047 THEN NULL  -- NaN, +/-infinity
            WHEN e = 0 AND m = 0 THEN 0::float8 * s
            WHEN e = 0 THEN s * (m::float8 / 4503599627370496) * 2::float8 ^ (-1022)
            ELSE s * (1 + m::float8 / 4503599627370496) * 2::float8 ^ (e - 1023) END
FROM (SELECT CASE WHEN b < 0 THEN -1 ELSE 1 END AS s, ((b >> 52) & 2047)::int AS e, b & 4503599627370495 AS m
      FROM (SELECT ('x' || encode(substring(p_vals FROM 8 * (p_k - 1) + 1 FOR 8), 'hex'))::bit(64)::bigint AS b
            WHERE p_k >= 1 AND 8 * p_k <= octet_length(p_vals)) bits) fields
$$;
REVOKE ALL ON FUNCTION pganalytics.frame_value(bytea, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.frame_value(bytea, int) TO pganalytics_admin;
