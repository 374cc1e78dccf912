-- Uploads: what an upload request with an Idempotency-Key was, and the
-- files being received right now.

-- One row per upload request that carried an Idempotency-Key, written in
-- the transaction that records its jobs. scope is "batch:<name>" for a
-- request naming a batch (a key is the batch's, whoever sends it) and
-- "key:<api key id>" otherwise. fingerprint sums up what was asked (target,
-- parameters, each file's name and SHA-256): a repeated request answers
-- job_ids, in order; the same key with another fingerprint is refused.
CREATE TABLE upload_requests (
    scope           text        NOT NULL,
    idempotency_key text        NOT NULL,
    fingerprint     text        NOT NULL,
    job_ids         uuid[]      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, idempotency_key)
);

-- A stored object whose upload is still being received: written before
-- its first byte, kept alive while the bytes flow, deleted in the
-- transaction that records its job (or when the upload is refused). The
-- orphan sweep leaves an object alone while its row is alive.
CREATE TABLE uploads_in_progress (
    object_key text        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    alive_at   timestamptz NOT NULL DEFAULT now()
);

-- The sweeper's repair after a lost stream: waiting jobs by when they
-- were published.
CREATE INDEX jobs_waiting_enqueued ON jobs (enqueued_at) WHERE status IN ('QUEUED', 'RETRYING');
