-- What the dashboard (issue 12) reads, each with its index, so that every
-- page costs the same at a million jobs as at ten.

-- Failures grouped by reason: a FAILED job's last error with what varies
-- from file to file (ids, quoted names, long numbers, hex digests) taken
-- out. HTTP statuses and other short numbers stay: "HTTP 503" and
-- "HTTP 422" are different reasons. Runs of white space become one space
-- (a group travels through HTML forms, which rewrite line ends).
CREATE FUNCTION ferry_error_group(e text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(btrim(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(coalesce(e, ''),
            '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'),
            '"[^"]*"', '"…"', 'g'),
            '[0-9a-fA-F]{16,}', '<hex>', 'g'),
            '[0-9]+\.[0-9]+|[0-9]{4,}', '<n>', 'g'),
            '\s+', ' ', 'g')),
        300)
$$;

ALTER TABLE jobs ADD COLUMN error_group text;

CREATE FUNCTION jobs_error_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.error_group := ferry_error_group(NEW.last_error);
    RETURN NEW;
END
$$;

-- Computed once, when a job fails; the WHEN clause keeps every other
-- change free of it.
CREATE TRIGGER jobs_error_group_insert BEFORE INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'FAILED') EXECUTE FUNCTION jobs_error_group();
CREATE TRIGGER jobs_error_group_update BEFORE UPDATE OF status, last_error ON jobs
    FOR EACH ROW WHEN (NEW.status = 'FAILED') EXECUTE FUNCTION jobs_error_group();

UPDATE jobs SET error_group = ferry_error_group(last_error) WHERE status = 'FAILED';

-- A batch's failures by group, with first and last seen (index-only), the
-- latest of each group, and the re-queue of one group.
CREATE INDEX jobs_batch_failures ON jobs (tenant, batch, error_group, finished_at DESC NULLS LAST)
    WHERE status = 'FAILED' AND batch IS NOT NULL;

-- Delivered and failed in the last hour, by target and minute: the scan
-- costs the last hour's finished jobs, not all of them.
CREATE INDEX jobs_finished_at ON jobs (finished_at) INCLUDE (target, status, tenant)
    WHERE finished_at IS NOT NULL;

-- Rate-limit answers (HTTP 429) of the last hour.
CREATE INDEX attempts_rate_limited ON attempts (finished_at) WHERE http_status = 429;

-- "Filename contains" in the jobs list. pg_trgm is a trusted extension
-- (PostgreSQL 13+); it lives in public, shared by every schema, and is
-- never dropped by a down migration. The lock keeps two schemas migrating
-- at once from racing to create it.
SELECT pg_advisory_xact_lock(hashtext('ferry: create extension pg_trgm'));
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE INDEX jobs_filename_trgm ON jobs USING gin (filename public.gin_trgm_ops);
