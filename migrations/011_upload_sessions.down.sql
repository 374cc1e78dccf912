DROP TABLE upload_session_parts;
DROP TABLE upload_sessions;
