DROP TRIGGER jobs_batch_counts_delete ON jobs;
DROP TRIGGER jobs_batch_counts_update ON jobs;
DROP TRIGGER jobs_batch_counts_insert ON jobs;
DROP FUNCTION jobs_batch_counts();
DROP TABLE batch_counts;
DROP INDEX jobs_batch_idempotency_key;
ALTER TABLE jobs DROP COLUMN client_path;
DROP TABLE batches;
