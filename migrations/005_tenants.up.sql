-- Tenants, roles and the audit trail (issue 11).
--
-- Every API key belongs to a tenant and has a role; jobs and batches belong
-- to the tenant of the key that created them. Rows that exist already go to
-- tenant 'default'. Existing keys become operators of 'default': they keep
-- everything they could do (all rows are 'default'), and no more.

ALTER TABLE api_keys
    ADD COLUMN tenant       text NOT NULL DEFAULT 'default',
    ADD COLUMN role         text NOT NULL DEFAULT 'operator'
        CHECK (role IN ('admin', 'operator', 'uploader')),
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz;
-- revoke NAME|PREFIX looks keys up by either. Names are not made unique
-- here (an existing install may repeat one); creating a key refuses a name
-- in use, and revoking refuses an ambiguous name.
CREATE INDEX api_keys_name ON api_keys (name);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

-- Adding a column with a constant default does not rewrite the table.
ALTER TABLE jobs ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE batches ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE batch_counts ADD COLUMN tenant text NOT NULL DEFAULT 'default';

-- A batch name is unique per tenant.
ALTER TABLE batches DROP CONSTRAINT batches_pkey;
ALTER TABLE batches ADD PRIMARY KEY (tenant, name);

-- Within a batch, an idempotency key names one file of that tenant's batch.
DROP INDEX jobs_batch_idempotency_key;
CREATE UNIQUE INDEX jobs_batch_idempotency_key ON jobs (tenant, batch, idempotency_key)
    WHERE batch IS NOT NULL AND idempotency_key IS NOT NULL;

-- An idempotency key within a batch is the tenant's batch's
-- (upload_requests, migration 003): "batch:<name>" becomes
-- "batch:<tenant>/<name>".
UPDATE upload_requests SET scope = 'batch:default/' || substr(scope, 7) WHERE scope LIKE 'batch:%';

-- Listings are per tenant, newest first.
CREATE INDEX jobs_tenant_id ON jobs (tenant, id DESC);
CREATE INDEX jobs_tenant_status_id ON jobs (tenant, status, id DESC);
DROP INDEX jobs_batch_status_id;
DROP INDEX jobs_batch_id;
CREATE INDEX jobs_batch_status_id ON jobs (tenant, batch, status, id DESC) WHERE batch IS NOT NULL;
CREATE INDEX jobs_batch_id ON jobs (tenant, batch, id DESC) WHERE batch IS NOT NULL;

DROP INDEX batch_counts_batch;
CREATE INDEX batch_counts_batch ON batch_counts (tenant, batch, bucket);

CREATE OR REPLACE FUNCTION jobs_batch_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO batch_counts (tenant, batch, status, bucket, files, bytes, first_at, last_at)
        VALUES (OLD.tenant, OLD.batch, OLD.status, date_trunc('minute', now()), -1, -OLD.size, now(), now());
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO batch_counts (tenant, batch, status, bucket, files, bytes, first_at, last_at)
        VALUES (NEW.tenant, NEW.batch, NEW.status, date_trunc('minute', now()), 1, NEW.size, now(), now());
    END IF;
    RETURN NULL;
END
$$;

-- Every state change made through the API or the CLI: who (key, tenant),
-- when, what (action, subject) and the details of the change.
CREATE TABLE audit (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    api_key_id  bigint      REFERENCES api_keys (id),
    key_name    text        NOT NULL,
    tenant      text        NOT NULL,
    action      text        NOT NULL,
    subject     text        NOT NULL DEFAULT '',
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_tenant_id ON audit (tenant, id DESC);
