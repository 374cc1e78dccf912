-- Traces across the queue (issue 25): the W3C traceparent of the upload
-- that made a job, so that a message the sweeper publishes again from
-- Postgres (a retry, a lost stream) keeps the file in its trace. NULL when
-- the upload was not traced; adding a nullable column rewrites nothing.
ALTER TABLE jobs ADD COLUMN trace_parent text;
