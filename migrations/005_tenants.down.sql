DROP TABLE audit;

CREATE OR REPLACE FUNCTION jobs_batch_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO batch_counts (batch, status, bucket, files, bytes, first_at, last_at)
        VALUES (OLD.batch, OLD.status, date_trunc('minute', now()), -1, -OLD.size, now(), now());
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO batch_counts (batch, status, bucket, files, bytes, first_at, last_at)
        VALUES (NEW.batch, NEW.status, date_trunc('minute', now()), 1, NEW.size, now(), now());
    END IF;
    RETURN NULL;
END
$$;

DROP INDEX batch_counts_batch;
CREATE INDEX batch_counts_batch ON batch_counts (batch, bucket);

DROP INDEX jobs_batch_id;
DROP INDEX jobs_batch_status_id;
CREATE INDEX jobs_batch_status_id ON jobs (batch, status, id DESC) WHERE batch IS NOT NULL;
CREATE INDEX jobs_batch_id ON jobs (batch, id DESC) WHERE batch IS NOT NULL;
DROP INDEX jobs_tenant_status_id;
DROP INDEX jobs_tenant_id;

-- Going down merges the tenants: batch names and batch idempotency keys
-- must be unique across them again, which holds only if they were.
DROP INDEX jobs_batch_idempotency_key;
CREATE UNIQUE INDEX jobs_batch_idempotency_key ON jobs (batch, idempotency_key)
    WHERE batch IS NOT NULL AND idempotency_key IS NOT NULL;
ALTER TABLE batches DROP CONSTRAINT batches_pkey;
ALTER TABLE batches ADD PRIMARY KEY (name);

UPDATE upload_requests SET scope = 'batch:' || split_part(substr(scope, 7), '/', 2) WHERE scope LIKE 'batch:%/%';

ALTER TABLE batch_counts DROP COLUMN tenant;
ALTER TABLE batches DROP COLUMN tenant;
ALTER TABLE jobs DROP COLUMN tenant;

DROP INDEX api_keys_prefix;
DROP INDEX api_keys_name;
ALTER TABLE api_keys
    DROP COLUMN last_used_at,
    DROP COLUMN expires_at,
    DROP COLUMN role,
    DROP COLUMN tenant;
