-- Upload sessions (issue 23): one large file sent in numbered parts, in
-- parallel, through any API process, into one S3 multipart upload. The
-- session row holds what the streaming upload checks before a byte (target,
-- parameters, declared size) and, once complete, the job it became.
CREATE TABLE upload_sessions (
    id               uuid        PRIMARY KEY,
    tenant           text        NOT NULL,
    api_key_id       bigint      REFERENCES api_keys (id),
    -- the client's Idempotency-Key: a session is found again by it (resume)
    idempotency_key  text,
    target           text        NOT NULL,
    batch            text,
    filename         text        NOT NULL,
    content_type     text        NOT NULL,
    client_path      text,
    -- the document the file becomes a version of (issue 21), if any
    document_key     text,
    params           jsonb       NOT NULL DEFAULT '{}',
    max_attempts     integer     NOT NULL CHECK (max_attempts > 0),
    size             bigint      NOT NULL CHECK (size >= 0),
    -- declared at creation or at completion ('' until then)
    sha256           text        NOT NULL DEFAULT '',
    part_size        bigint      NOT NULL CHECK (part_size > 0),
    parts            integer     NOT NULL CHECK (parts > 0),
    -- the job the file becomes: its id is chosen at creation, so that the
    -- object key (objects/<job id>) is known to the multipart upload
    job_id           uuid        NOT NULL,
    object_key       text        NOT NULL,
    s3_upload_id     text        NOT NULL,
    state            text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'completed', 'aborted')),
    -- every part byte received, replaced parts included (resume costs)
    bytes_received   bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX upload_sessions_key ON upload_sessions ((coalesce(api_key_id, 0)), idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state <> 'aborted';
CREATE INDEX upload_sessions_expiry ON upload_sessions (expires_at) WHERE state = 'open';

-- The parts received, the latest of each number. chain_in and chain_out are
-- the SHA-256 state (its eight words) before and after the part's bytes;
-- when each part's chain_in is the previous part's chain_out, the chain
-- proves the whole file's SHA-256 without reading it back.
CREATE TABLE upload_session_parts (
    session_id  uuid        NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    n           integer     NOT NULL CHECK (n > 0),
    size        bigint      NOT NULL,
    sha256      text        NOT NULL,
    etag        text        NOT NULL,
    chain_in    text        NOT NULL DEFAULT '',
    chain_out   text        NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, n)
);
