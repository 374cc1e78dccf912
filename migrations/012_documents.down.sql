DROP INDEX jobs_superseded_objects;
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
UPDATE jobs SET status = 'CANCELED' WHERE status = 'SUPERSEDED';
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('QUEUED', 'RUNNING', 'RETRYING', 'SUCCESS', 'FAILED', 'CANCELED'));
DROP INDEX jobs_document_version;
ALTER TABLE jobs DROP COLUMN op, DROP COLUMN version, DROP COLUMN document_id;
DROP TABLE documents;
