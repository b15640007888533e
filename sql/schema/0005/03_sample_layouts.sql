-- The series of one instance's snapshot, in the order of its values. A frame stores only its
-- values and a layout id: a source's series rarely change between cycles, so the ids are kept
-- once, and checked once (that they are the instance's series) when a layout is first seen.
-- No unique key: two deliveries may register the same layout at once, and either id is right.
CREATE TABLE pganalytics.sample_layouts (
    instance_id int   NOT NULL REFERENCES pganalytics.instances ON DELETE CASCADE,
    layout_id   int   NOT NULL,
    series_ids  int[] NOT NULL CONSTRAINT sample_layouts_not_empty CHECK (cardinality(series_ids) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, layout_id)
);
CREATE SEQUENCE pganalytics.sample_layouts_layout_id_seq AS int OWNED BY pganalytics.sample_layouts.layout_id;
ALTER TABLE pganalytics.sample_layouts ALTER COLUMN layout_id SET DEFAULT pg_catalog.nextval('pganalytics.sample_layouts_layout_id_seq'::regclass);
-- Found by its ids: a hash index has no size limit (a btree entry does, ~670 ids).
CREATE INDEX sample_layouts_ids ON pganalytics.sample_layouts USING hash (series_ids);
-- downgrade: DROP TABLE pganalytics.sample_layouts;
