DROP TABLE dashboard_sessions;
ALTER TABLE target_states DROP COLUMN probe_requested_at;

-- The failure groups of migration 007.
CREATE OR REPLACE FUNCTION ferry_error_group(e text) RETURNS text
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
DROP FUNCTION ferry_error_quoted(text, text, boolean);
DROP FUNCTION ferry_error_name(text);
UPDATE jobs SET error_group = ferry_error_group(last_error) WHERE status = 'FAILED';
