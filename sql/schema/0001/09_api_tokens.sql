-- Gateway credentials. Only a SHA-256 of each (random, 256-bit) token is stored.
CREATE TABLE pganalytics.api_tokens (
    token_id     int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text  NOT NULL UNIQUE,
    token_sha256 bytea NOT NULL UNIQUE CONSTRAINT api_tokens_hash_len CHECK (length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
