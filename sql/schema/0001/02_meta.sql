-- Install bookkeeping, e.g. the hash of the replaceable objects last applied (so an upgrade
-- with nothing new changes nothing).
CREATE TABLE pganalytics.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
