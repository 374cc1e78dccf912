-- API keys are stored only as SHA-256 hashes; prefix is the key's first
-- characters, kept to tell keys apart in listings.
CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    name         text        NOT NULL,
    key_hash     bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- One row per accepted file. id is a UUIDv7, so ordering by id is ordering
-- by creation time: the status API pages through jobs by id (keyset).
CREATE TABLE jobs (
    id               uuid        PRIMARY KEY,
    target           text        NOT NULL,
    batch            text,
    filename         text        NOT NULL,
    content_type     text        NOT NULL,
    size             bigint      NOT NULL CHECK (size >= 0),
    sha256           text        NOT NULL,
    object_key       text        NOT NULL,
    params           jsonb       NOT NULL DEFAULT '{}',
    status           text        NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'RETRYING', 'SUCCESS', 'FAILED', 'CANCELED')),
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL CHECK (max_attempts > 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    remote_id        text,
    -- progress of a multi-step delivery, saved by the connector
    checkpoint       jsonb       NOT NULL DEFAULT '{}',
    idempotency_key  text,
    api_key_id       bigint      REFERENCES api_keys (id),
    -- the claim of the worker delivering it, while RUNNING
    lease_owner      text,
    lease_expires_at timestamptz,
    -- when the job was last published to the queue; NULL until published
    enqueued_at      timestamptz,
    -- when the stored file was removed after delivery (retention)
    object_deleted_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

CREATE UNIQUE INDEX jobs_idempotency_key ON jobs ((coalesce(api_key_id, 0)), idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_status_id ON jobs (status, id DESC);
CREATE INDEX jobs_target_status_id ON jobs (target, status, id DESC);
CREATE INDEX jobs_target_id ON jobs (target, id DESC);
CREATE INDEX jobs_batch_status_id ON jobs (batch, status, id DESC) WHERE batch IS NOT NULL;
CREATE INDEX jobs_batch_id ON jobs (batch, id DESC) WHERE batch IS NOT NULL;
-- the re-publisher's scans: jobs waiting for a worker, and expired leases
CREATE INDEX jobs_waiting ON jobs (next_attempt_at) WHERE status IN ('QUEUED', 'RETRYING');
CREATE INDEX jobs_delivered_objects ON jobs (finished_at) WHERE status = 'SUCCESS' AND object_deleted_at IS NULL;
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'RUNNING';

-- Every attempt at delivering a job, kept for as long as the job.
CREATE TABLE attempts (
    id          bigserial   PRIMARY KEY,
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number      integer     NOT NULL,
    worker      text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text        NOT NULL CHECK (outcome IN ('RUNNING', 'SUCCESS', 'RETRY', 'FAILED', 'INTERRUPTED', 'ABANDONED', 'CANCELED')),
    http_status integer,
    error       text
);

CREATE INDEX attempts_job_id ON attempts (job_id, id);
