DROP INDEX jobs_filename_trgm;
DROP INDEX attempts_rate_limited;
DROP INDEX jobs_finished_at;
DROP INDEX jobs_batch_failures;
DROP TRIGGER jobs_error_group_update ON jobs;
DROP TRIGGER jobs_error_group_insert ON jobs;
DROP FUNCTION jobs_error_group();
ALTER TABLE jobs DROP COLUMN error_group;
DROP FUNCTION ferry_error_group(text);
-- pg_trgm stays: other schemas of the database may use it.
