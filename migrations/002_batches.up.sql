-- Batches: named sets of uploads (a migration), their running counts, and
-- the path each file had on the client.

-- A batch object: uploads that name it get its target and parameters as
-- defaults. A batch named by uploads without an object stays a mere label.
CREATE TABLE batches (
    name        text        PRIMARY KEY,
    target      text        NOT NULL,
    params      jsonb       NOT NULL DEFAULT '{}',
    api_key_id  bigint      REFERENCES api_keys (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The path the client gave for the file (relative to what it pushed), for
-- the batch report.
ALTER TABLE jobs ADD COLUMN client_path text;

-- Within a batch, an idempotency key names one file whoever sends it: two
-- API keys pushing the same batch do not duplicate its files. Outside a
-- batch, keys stay per API key (jobs_idempotency_key).
CREATE UNIQUE INDEX jobs_batch_idempotency_key ON jobs (batch, idempotency_key)
    WHERE batch IS NOT NULL AND idempotency_key IS NOT NULL;

-- Running counts of each batch's jobs by status, so that the summary costs
-- the same at a million jobs as at ten. Triggers only append deltas (no
-- row is updated, so workers never wait on each other for a counter);
-- reading the summary folds them into one row per status and minute
-- (Store.CompactBatchCounts). bucket is the minute of the change; the
-- recent buckets give the throughput.
CREATE TABLE batch_counts (
    batch    text        NOT NULL,
    status   text        NOT NULL,
    bucket   timestamptz NOT NULL,
    files    bigint      NOT NULL,
    bytes    bigint      NOT NULL,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL
);

CREATE INDEX batch_counts_batch ON batch_counts (batch, bucket);

CREATE FUNCTION jobs_batch_counts() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- The WHEN clauses are checked without calling the function: heartbeats,
-- checkpoints and jobs outside a batch cost nothing.
CREATE TRIGGER jobs_batch_counts_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.batch IS NOT NULL) EXECUTE FUNCTION jobs_batch_counts();
CREATE TRIGGER jobs_batch_counts_update AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.batch IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION jobs_batch_counts();
CREATE TRIGGER jobs_batch_counts_delete AFTER DELETE ON jobs
    FOR EACH ROW WHEN (OLD.batch IS NOT NULL) EXECUTE FUNCTION jobs_batch_counts();

-- Count the jobs that exist already. The triggers above hold a lock on
-- jobs until this migration commits, so no change slips between.
INSERT INTO batch_counts (batch, status, bucket, files, bytes, first_at, last_at)
SELECT batch, status, date_trunc('minute', min(created_at)), count(*), sum(size), min(created_at), max(updated_at)
FROM jobs WHERE batch IS NOT NULL GROUP BY batch, status;
