-- The one sentence an anomaly event says, e.g. "cache hit ratio in database app fell to 71 %
-- (expected 99 %) on instance db1 from 2026-11-01 10:02 to 10:09 UTC": the type's template
-- (anomaly_types) with the label and subject, actual and expected in the type's unit, and the
-- episode's span ("since ..." while it goes on). Times are UTC: the sentence is stored, and a
-- session's TimeZone must not change what it says.
-- depends: analytics/anomaly_types.sql
CREATE OR REPLACE FUNCTION pganalytics.anomaly_event_text(
    p_type     text,
    p_subject  text,
    p_instance text,
    p_actual   float8,
    p_expected float8,
    p_started  timestamptz,
    p_ended    timestamptz)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t       record;
    what    text;
    shown   text[] := '{}';
    v       float8;
    s       text;
    started timestamp := p_started AT TIME ZONE 'UTC';
    ended   timestamp := p_ended AT TIME ZONE 'UTC';
    span    text;
BEGIN
    SELECT * INTO t FROM pganalytics.anomaly_types a WHERE a.anomaly_type = p_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'anomaly_event_text: unknown anomaly type %', pg_catalog.quote_literal(p_type)
            USING ERRCODE = '22023';
    END IF;
    FOREACH v IN ARRAY ARRAY[p_actual, p_expected] LOOP
        IF v IS NULL OR v IN ('NaN', 'infinity', '-infinity') THEN  -- PostgreSQL's NaN equals itself
            s := 'unknown';
        ELSE
            s := CASE t.unit
                WHEN 'ratio' THEN round((v * 100)::numeric, 1)::text || ' %'
                WHEN 'ms' THEN CASE WHEN abs(v) >= 1000 THEN round((v / 1000)::numeric, 2)::text || ' s'
                                    ELSE round(v::numeric, CASE WHEN abs(v) >= 100 THEN 0 WHEN abs(v) >= 1 THEN 1 ELSE 3 END)::text || ' ms' END
                WHEN 'bytes' THEN pg_catalog.pg_size_pretty(round(v::numeric, 0))
                WHEN 'bytes/s' THEN pg_catalog.pg_size_pretty(round(v::numeric, 0)) || '/s'
                ELSE round(v::numeric, 1)::text || CASE WHEN t.unit IN ('per minute', 'per hour') THEN ' ' || t.unit ELSE '' END
            END;
            -- 71.0 -> 71, 99.30 -> 99.3 (before the unit)
            s := regexp_replace(s, '^(-?[0-9]+)(\.[0-9]*[1-9])?\.?0*( |$)', '\1\2\3');
        END IF;
        shown := shown || s;
    END LOOP;
    what := t.label || CASE
        WHEN p_subject IS NULL OR p_subject = '' THEN ''
        WHEN p_subject LIKE 'datname:%' THEN ' in database ' || substr(p_subject, 9)
        WHEN p_subject LIKE 'queryid:%' THEN ' of query ' || substr(p_subject, 9)
        WHEN p_subject LIKE 'replica:%' THEN ' of replica ' || substr(p_subject, 9)
        WHEN p_subject LIKE 'slot:%' THEN ' of slot ' || substr(p_subject, 6)
        ELSE ' of ' || p_subject END;
    span := CASE
        WHEN p_started IS NULL THEN ''
        WHEN p_ended IS NULL THEN 'since ' || to_char(started, 'YYYY-MM-DD HH24:MI') || ' UTC'
        ELSE 'from ' || to_char(started, 'YYYY-MM-DD HH24:MI') || ' to '
             || to_char(ended, CASE WHEN ended::date = started::date THEN 'HH24:MI' ELSE 'YYYY-MM-DD HH24:MI' END)
             || ' UTC' END;
    -- {what} last: it holds a database or slot name, which must not be read as a placeholder.
    RETURN rtrim(replace(replace(replace(replace(replace(t.template,
        '{actual}', shown[1]), '{expected}', shown[2]), '{instance}', coalesce(p_instance, '?')),
        '{when}', span), '{what}', what));
END
$$;
REVOKE ALL ON FUNCTION pganalytics.anomaly_event_text(text, text, text, float8, float8, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.anomaly_event_text(text, text, text, float8, float8, timestamptz, timestamptz) TO pganalytics_admin;
