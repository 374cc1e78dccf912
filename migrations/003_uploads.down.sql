DROP INDEX jobs_waiting_enqueued;
DROP TABLE uploads_in_progress;
DROP TABLE upload_requests;
