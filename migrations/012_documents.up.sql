-- Documents with versions (issue 21): one logical file at one target,
-- named by the client's key, scoped to (tenant, target). Each upload that
-- names a document is a version of it (a job with document_id and
-- version); a delete is a job too (op 'delete', no file). Jobs without a
-- document keep every behaviour they had.
CREATE TABLE documents (
    id              uuid        PRIMARY KEY,
    tenant          text        NOT NULL,
    target          text        NOT NULL,
    key             text        NOT NULL,
    state           text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted')),
    -- what the connector reported of the document at the target (its id,
    -- version id, ETag...), kept for the next version
    remote          jsonb       NOT NULL DEFAULT '{}',
    -- the latest version accepted (versions is also its number)
    versions        integer     NOT NULL DEFAULT 0,
    latest_job      uuid,
    -- the latest version delivered
    current_version integer     NOT NULL DEFAULT 0,
    current_sha256  text,
    current_size    bigint,
    current_job     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, target, key)
);
CREATE INDEX documents_target_key ON documents (tenant, target, key text_pattern_ops);

ALTER TABLE jobs
    ADD COLUMN document_id uuid REFERENCES documents (id),
    ADD COLUMN version     integer,
    ADD COLUMN op          text NOT NULL DEFAULT 'put' CHECK (op IN ('put', 'delete'));
CREATE INDEX jobs_document_version ON jobs (document_id, version) WHERE document_id IS NOT NULL;

-- SUPERSEDED: a version overtaken by a newer one before it started; final,
-- never delivered.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'RETRYING', 'SUCCESS', 'FAILED', 'CANCELED', 'SUPERSEDED'));

-- The files of superseded versions go after the retention of delivered
-- files, as theirs do (jobs_delivered_objects for SUCCESS).
CREATE INDEX jobs_superseded_objects ON jobs (finished_at) WHERE status = 'SUPERSEDED' AND object_deleted_at IS NULL;
