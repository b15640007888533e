-- Scored points of derived metrics -> anomaly events (pganalytics.anomalies), one per episode.
--
-- The points come as parallel arrays, one element per point: the anomaly type and subject of
-- its series (anomaly_inputs()' rows), the bucket, the actual value, the detector's expected
-- value, score and flag (anomaly_scores(): expected, score, is_anomaly), and optionally the
-- input's context (kept at the event's peak). Any order and any mix of series; a point is
-- unique by (type, subject, ts). THE LIVE PATH calls this once a minute per instance with the
-- newly scored point of each of the instance's series (source 'live'); detect_anomalies()
-- calls it with the points it scored (source 'detect'). Returns a summary:
-- {"points", "opened", "closed", "merged", "events"} (events: how many it wrote).
--
-- The rules (one series at a time, its points in time order):
-- - A point is ANOMALOUS when the detector flags it (p_flag; NULL: score >= 0.5, the production
--   threshold) and it departs from expected in the type's bad direction (anomaly_types.direction:
--   a cache hit ratio going up is not an anomaly) by at least min_change (and, for types with a
--   min_ratio, actual >= min_ratio x expected; for types with a min_actual, actual at or past
--   it); or when it is past the type's hard_limit.
--   A point without a finite value is skipped; one without a finite expected value can only
--   be anomalous past the hard limit.
-- - An anomalous point that no event holds opens one (started_at = its bucket).
-- - An open event is EXTENDED by each later point. A point is still AWAY when it is anomalous,
--   past the hard limit, or further than a band from expected in the bad direction, the band
--   being a quarter of the peak's departure: the detector damps its scores for a while after
--   an alert (suppress_points), so the flags alone would end an 8-minute episode after its
--   first minute. The peak is the point furthest from expected in the bad direction (its
--   actual, expected and score are kept); severity is the highest score of the episode.
-- - It CLOSES after 3 points in a row that are not away: ended_at = the first of them. One
--   point back proves little (a metric crossing its expected level on the way); more would
--   end the event late.
-- - An open event whose series has had no point for an hour (counted in the points of its type
--   this call carries: a query that stopped running, a database dropped) closes after its
--   last bucket away.
-- Idempotent: an event knows the newest point it has taken into account (last_at) and every
-- event owns [started_at, last_at], so points already seen, in the same or an overlapping
-- call, change nothing. Points older than an event (detect_anomalies() over an earlier
-- period) are recorded too: an earlier episode that runs into the later event's start becomes
-- that event's beginning. Calls for one instance take turns (an advisory lock), so the live
-- path and detect_anomalies() never open one episode twice.
-- SECURITY DEFINER: the admin role may read events but not write them except through here.
-- depends: analytics/anomaly_types.sql
-- depends: analytics/anomaly_event_text.sql
CREATE OR REPLACE FUNCTION pganalytics.record_anomalies(
    p_instance_id int,
    p_source      text,
    p_type        text[],
    p_subject     text[],
    p_ts          timestamptz[],
    p_value       float8[],
    p_expected    float8[],
    p_score       float8[],
    p_flag        boolean[],
    p_context     jsonb[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    threshold   CONSTANT float8   := 0.5;
    back_needed CONSTANT int      := 3;
    recovery    CONSTANT float8   := 0.25;
    stale       CONSTANT interval := interval '1 hour';
    width       CONSTANT interval := interval '1 minute';
    n        int := cardinality(p_ts);
    iname    text;
    problem  text;
    stamp    timestamptz := now();
    p        record;
    -- the event the points are extending (c_id NULL: none)
    c_id            bigint;
    c_started       timestamptz;
    c_ended         timestamptz;
    c_last          timestamptz;
    c_last_away     timestamptz;
    c_back_since    timestamptz;
    c_back          int;
    c_points        int;
    c_peak_at       timestamptz;
    c_peak_value    float8;
    c_peak_expected float8;
    c_peak_score    float8;
    c_severity      float8;
    c_context       jsonb;
    better   boolean;
    g_type   text;
    g_subj   text;
    sgn      float8;
    band     float8;
    eff      float8;
    away     boolean;
    touched  bigint[] := '{}';
    n_points int := 0;
    n_opened int := 0;
    n_closed int := 0;
    n_merged int := 0;
    k        int;
BEGIN
    IF p_instance_id IS NULL OR p_source IS NULL OR p_source !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'record_anomalies: an instance id and a source name (lower case, e.g. ''live'') are required'
            USING ERRCODE = '22023';
    END IF;
    SELECT i.name INTO iname FROM pganalytics.instances i WHERE i.instance_id = p_instance_id;
    IF iname IS NULL THEN
        RAISE EXCEPTION 'record_anomalies: no instance with id %', p_instance_id USING ERRCODE = '22023';
    END IF;
    IF p_type IS NULL OR p_subject IS NULL OR p_ts IS NULL OR p_value IS NULL OR p_expected IS NULL
       OR p_score IS NULL OR p_flag IS NULL THEN
        RAISE EXCEPTION 'record_anomalies: the point arrays must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF coalesce(array_ndims(p_ts), 1) <> 1
       OR cardinality(p_type) <> n OR cardinality(p_subject) <> n OR cardinality(p_value) <> n
       OR cardinality(p_expected) <> n OR cardinality(p_score) <> n OR cardinality(p_flag) <> n
       OR cardinality(p_context) <> n THEN
        RAISE EXCEPTION 'record_anomalies: the point arrays must be one-dimensional and as long as each other (% timestamps)', n
            USING ERRCODE = '22023';
    END IF;
    IF array_position(p_type, NULL) IS NOT NULL OR array_position(p_subject, NULL) IS NOT NULL
       OR array_position(p_ts, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'record_anomalies: types, subjects and timestamps must not hold NULLs' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(DISTINCT u.t, ', ') INTO problem FROM unnest(p_type) AS u(t)
    WHERE NOT EXISTS (SELECT FROM pganalytics.anomaly_types a WHERE a.anomaly_type = u.t);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_anomalies: unknown anomaly type(s) %; known: %', problem,
            (SELECT string_agg(a.anomaly_type, ', ' ORDER BY a.anomaly_type) FROM pganalytics.anomaly_types a)
            USING ERRCODE = '22023';
    END IF;
    SELECT u.t || ' ' || pg_catalog.quote_literal(u.s) || ' at ' || u.ts INTO problem
    FROM unnest(p_type, p_subject, p_ts) AS u(t, s, ts)
    GROUP BY u.t, u.s, u.ts HAVING count(*) > 1 LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_anomalies: point % is given twice', problem USING ERRCODE = '22023';
    END IF;
    IF n = 0 THEN
        RETURN jsonb_build_object('points', 0, 'opened', 0, 'closed', 0, 'merged', 0, 'events', 0);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pganalytics.record_anomalies'), p_instance_id);

    -- 1. Open events whose series went silent for an hour (see above) close first.
    WITH closed AS (
        UPDATE pganalytics.anomalies e
        SET ended_at = coalesce(e.back_since, e.last_away_at + width), back_points = 0,
            context = e.context || jsonb_build_object('closed_by', 'no data for ' || stale::text),
            updated_at = stamp
        WHERE e.instance_id = p_instance_id AND e.ended_at IS NULL AND e.anomaly_type = ANY (p_type)
          AND coalesce((SELECT min(u.ts) FROM unnest(p_type, p_subject, p_ts) AS u(t, s, ts)
                        WHERE u.t = e.anomaly_type AND u.s = e.subject AND u.ts > e.last_at),
                       (SELECT max(u.ts) FROM unnest(p_type, p_ts) AS u(t, ts) WHERE u.t = e.anomaly_type))
              - e.last_at > stale
        RETURNING e.anomaly_id)
    SELECT touched || coalesce(array_agg(c.anomaly_id), '{}'), count(*) INTO touched, k FROM closed c;
    n_closed := n_closed + k;

    -- 2. The points of the series that need a look: an anomalous point, or an open event that
    --    these points may extend. The rest (nearly every series, nearly every minute) is done.
    --    covered_by: the event that already took the point into account (as of this start).
    FOR p IN
        WITH pts AS (
            SELECT u.anomaly_type, u.subject, u.ts, u.value,
                   CASE WHEN u.expected NOT IN ('NaN', 'infinity', '-infinity') THEN u.expected END AS expected,
                   CASE WHEN u.score = 'NaN' THEN 0 ELSE least(greatest(coalesce(u.score, 0), 0), 1) END AS score,
                   u.flag AS flagged, u.context,
                   t.direction, t.min_change, t.min_ratio, t.min_actual,
                   CASE t.direction WHEN 'up' THEN 1 ELSE -1 END
                       * (u.value - CASE WHEN u.expected NOT IN ('NaN', 'infinity', '-infinity') THEN u.expected END) AS badness,
                   coalesce(CASE t.direction WHEN 'up' THEN u.value >= t.hard_limit ELSE u.value <= t.hard_limit END,
                            false) AS beyond
            FROM unnest(p_type, p_subject, p_ts, p_value, p_expected, p_score, p_flag,
                        coalesce(p_context, array_fill(NULL::jsonb, ARRAY[n]))) AS u(anomaly_type, subject, ts, value, expected, score, flag, context)
            JOIN pganalytics.anomaly_types t ON t.anomaly_type = u.anomaly_type
            -- no value, nothing to say (not `value = value`: PostgreSQL's NaN equals itself)
            WHERE u.value NOT IN ('NaN', 'infinity', '-infinity')),
        marked AS (
            SELECT x.*,
                   x.beyond OR coalesce(
                       coalesce(x.flagged, x.score >= threshold)
                       AND x.badness > 0 AND x.badness >= x.min_change
                       AND (x.min_ratio IS NULL OR CASE x.direction WHEN 'up' THEN x.value >= x.min_ratio * x.expected
                                                                    ELSE x.value * x.min_ratio <= x.expected END)
                       AND (x.min_actual IS NULL OR CASE x.direction WHEN 'up' THEN x.value >= x.min_actual
                                                                     ELSE x.value <= x.min_actual END),
                       false) AS bad
            FROM pts x),
        work AS (
            SELECT m.anomaly_type, m.subject FROM marked m
            GROUP BY m.anomaly_type, m.subject
            HAVING bool_or(m.bad)
                OR EXISTS (SELECT FROM pganalytics.anomalies e
                           WHERE e.instance_id = p_instance_id AND e.anomaly_type = m.anomaly_type
                             AND e.subject = m.subject AND e.ended_at IS NULL AND e.last_at < max(m.ts)))
        SELECT m.*, c.anomaly_id AS covered_by
        FROM marked m
        JOIN work w ON w.anomaly_type = m.anomaly_type AND w.subject = m.subject
        LEFT JOIN LATERAL (
            SELECT e.anomaly_id FROM pganalytics.anomalies e
            WHERE e.instance_id = p_instance_id AND e.anomaly_type = m.anomaly_type AND e.subject = m.subject
              AND e.started_at <= m.ts AND e.last_at >= m.ts
            ORDER BY e.started_at DESC LIMIT 1) c ON true
        ORDER BY m.anomaly_type, m.subject, m.ts
    LOOP
        IF g_type IS DISTINCT FROM p.anomaly_type OR g_subj IS DISTINCT FROM p.subject THEN
            g_type := p.anomaly_type;
            g_subj := p.subject;
            c_id := NULL;
        END IF;
        n_points := n_points + 1;
        sgn := CASE p.direction WHEN 'up' THEN 1 ELSE -1 END;
        eff := CASE WHEN p.beyond THEN greatest(p.score, threshold) ELSE p.score END;
        IF p.covered_by IS NOT NULL THEN
            IF c_id IS NULL OR c_id = p.covered_by THEN
                CONTINUE;  -- already counted
            END IF;
            -- The event opened by this call runs into an older one's span: one episode, which
            -- started earlier than that event knew.
            DELETE FROM pganalytics.anomalies e WHERE e.instance_id = p_instance_id AND e.anomaly_id = c_id;
            touched := array_remove(touched, c_id);
            SELECT coalesce(sgn * (c_peak_value - c_peak_expected), '-infinity')
                   > coalesce(sgn * (e.peak_value - e.peak_expected), '-infinity')
            INTO better FROM pganalytics.anomalies e
            WHERE e.instance_id = p_instance_id AND e.anomaly_id = p.covered_by;
            UPDATE pganalytics.anomalies e
            SET started_at = least(e.started_at, c_started), points = e.points + c_points,
                severity = greatest(e.severity, c_severity),
                peak_at = CASE WHEN better THEN c_peak_at ELSE e.peak_at END,
                peak_value = CASE WHEN better THEN c_peak_value ELSE e.peak_value END,
                peak_expected = CASE WHEN better THEN c_peak_expected ELSE e.peak_expected END,
                peak_score = CASE WHEN better THEN c_peak_score ELSE e.peak_score END,
                context = CASE WHEN better THEN c_context ELSE e.context END,
                updated_at = stamp
            WHERE e.instance_id = p_instance_id AND e.anomaly_id = p.covered_by;
            IF NOT p.covered_by = ANY (touched) THEN
                touched := touched || p.covered_by;
            END IF;
            n_merged := n_merged + 1;
            c_id := NULL;
            CONTINUE;
        END IF;
        IF c_id IS NULL THEN
            -- the open event this point may continue (this point is after its last_at)
            SELECT e.anomaly_id, e.started_at, e.last_at, e.last_away_at, e.back_since, e.back_points,
                   e.points, e.peak_at, e.peak_value, e.peak_expected, e.peak_score, e.severity, e.context
            INTO c_id, c_started, c_last, c_last_away, c_back_since, c_back,
                 c_points, c_peak_at, c_peak_value, c_peak_expected, c_peak_score, c_severity, c_context
            FROM pganalytics.anomalies e
            WHERE e.instance_id = p_instance_id AND e.anomaly_type = p.anomaly_type
              AND e.subject = p.subject AND e.ended_at IS NULL AND e.started_at <= p.ts
            ORDER BY e.started_at DESC LIMIT 1;
        END IF;
        IF c_id IS NULL THEN
            IF p.bad THEN
                c_started := p.ts;
                c_last := p.ts;
                c_last_away := p.ts;
                c_back_since := NULL;
                c_back := 0;
                c_points := 1;
                c_peak_at := p.ts;
                c_peak_value := p.value;
                c_peak_expected := p.expected;
                c_peak_score := p.score;
                c_severity := eff;
                c_context := coalesce(p.context, '{}');
                INSERT INTO pganalytics.anomalies AS e
                    (instance_id, anomaly_type, subject, source, started_at, last_at, last_away_at,
                     points, peak_at, peak_value, peak_expected, peak_score, severity, description,
                     context, created_at, updated_at)
                VALUES (p_instance_id, p.anomaly_type, p.subject, p_source, c_started, c_last, c_last_away,
                        c_points, c_peak_at, c_peak_value, c_peak_expected, c_peak_score, c_severity, '',
                        c_context, stamp, stamp)
                RETURNING e.anomaly_id INTO c_id;
                touched := touched || c_id;
                n_opened := n_opened + 1;
            END IF;
            CONTINUE;
        END IF;
        c_ended := NULL;
        band := recovery * greatest(coalesce(sgn * (c_peak_value - c_peak_expected), 0), 0);
        away := p.bad OR p.beyond OR coalesce(p.badness > band, false);
        IF away THEN
            c_points := c_points + 1;
            c_last_away := p.ts;
            c_back_since := NULL;
            c_back := 0;
            c_severity := greatest(c_severity, eff);
            IF coalesce(p.badness, '-infinity') > coalesce(sgn * (c_peak_value - c_peak_expected), '-infinity') THEN
                c_peak_at := p.ts;
                c_peak_value := p.value;
                c_peak_expected := p.expected;
                c_peak_score := p.score;
                c_context := coalesce(p.context, '{}');
            END IF;
        ELSE
            c_back_since := coalesce(c_back_since, p.ts);
            c_back := c_back + 1;
            IF c_back >= back_needed THEN
                c_ended := c_back_since;
                n_closed := n_closed + 1;
            END IF;
        END IF;
        c_last := p.ts;
        UPDATE pganalytics.anomalies e
        SET ended_at = c_ended, last_at = c_last, last_away_at = c_last_away, back_since = c_back_since,
            back_points = c_back, points = c_points, peak_at = c_peak_at, peak_value = c_peak_value,
            peak_expected = c_peak_expected, peak_score = c_peak_score, severity = c_severity,
            context = c_context, updated_at = stamp
        WHERE e.instance_id = p_instance_id AND e.anomaly_id = c_id;
        IF NOT c_id = ANY (touched) THEN
            touched := touched || c_id;
        END IF;
        IF c_ended IS NOT NULL THEN
            c_id := NULL;
        END IF;
    END LOOP;

    -- 3. An episode recorded before a later event of its series, whose points ended before
    --    they reached it, ends where it was last away: only the newest event may stay open.
    WITH closed AS (
        UPDATE pganalytics.anomalies e
        SET ended_at = coalesce(e.back_since, e.last_away_at + width), back_points = 0, updated_at = stamp
        WHERE e.instance_id = p_instance_id AND e.ended_at IS NULL AND e.anomaly_id = ANY (touched)
          AND EXISTS (SELECT FROM pganalytics.anomalies l
                      WHERE l.instance_id = p_instance_id AND l.anomaly_type = e.anomaly_type
                        AND l.subject = e.subject AND l.started_at > e.started_at)
        RETURNING e.anomaly_id)
    SELECT count(*) INTO k FROM closed;
    n_closed := n_closed + k;

    -- 4. The sentence (and a query's text) of every event written.
    UPDATE pganalytics.anomalies e
    SET description = pganalytics.anomaly_event_text(e.anomaly_type, e.subject, iname, e.peak_value,
                                                     e.peak_expected, e.started_at, e.ended_at),
        context = CASE WHEN e.subject ~ '^queryid:-?[0-9]{1,19}$' AND NOT e.context ? 'query'
                       THEN e.context || coalesce(
                           (SELECT jsonb_build_object('query', left(q.query, 200)) FROM pganalytics.query_texts q
                            WHERE q.instance_id = e.instance_id AND q.queryid = substr(e.subject, 9)::bigint), '{}')
                       ELSE e.context END
    WHERE e.instance_id = p_instance_id AND e.anomaly_id = ANY (touched);

    RETURN jsonb_build_object('points', n_points, 'opened', n_opened, 'closed', n_closed, 'merged', n_merged,
                              'events', cardinality(touched));
END
$$;
REVOKE ALL ON FUNCTION pganalytics.record_anomalies(int, text, text[], text[], timestamptz[], float8[], float8[], float8[], boolean[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pganalytics.record_anomalies(int, text, text[], text[], timestamptz[], float8[], float8[], float8[], boolean[], jsonb[]) TO pganalytics_admin;
