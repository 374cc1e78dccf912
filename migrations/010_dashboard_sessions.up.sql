-- Dashboard sessions (issue 20) and failure groups that keep the reason.
--
-- A dashboard session lives here, not in the memory of the process that
-- made it, so that every API process behind a proxy sees it. Only a hash
-- of the session's token is kept: the token itself is in the browser's
-- cookie. A session speaks for its API key: revoking the key, or deleting
-- the key's row, ends its sessions at once.
CREATE TABLE dashboard_sessions (
    token_hash   bytea       PRIMARY KEY,
    api_key_id   bigint      NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
-- A key's sessions, oldest first: the bound per key drops the oldest.
CREATE INDEX dashboard_sessions_key ON dashboard_sessions (api_key_id, created_at);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);

-- "Probe now" for a target whose circuit is open (issue 24): when an
-- operator last asked. Each worker process whose breaker is open probes
-- at once when the request is newer than the one it last honoured; while
-- open, next_probe_at says when the breaker probes next by itself.
ALTER TABLE target_states ADD COLUMN probe_requested_at timestamptz;

-- Failure groups: what varies from file to file goes (ids, numbers of four
-- digits or more, hex digests, file names, paths), the words stay. A quoted
-- string is kept when it is a JSON key (after { or a comma, before a colon)
-- or words (the paths among them go); it becomes "…" when it names a file,
-- or is one token with a digit, a dot or a slash in it (an id, a name, a
-- path, a URL). Escaped quotes (\" inside a JSON string)
-- are read the same way. HTTP statuses and other short numbers stay.

-- ferry_error_name reports whether a quoted string names something that
-- varies per file rather than saying why.
CREATE FUNCTION ferry_error_name(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT s = ''
        OR s ~ '[^\s.]\.[A-Za-z][A-Za-z0-9]{0,7}$'
        OR (s !~ '\s' AND s ~ '[0-9./\\]')
$$;

-- ferry_error_quoted blanks the names among the strings of e quoted by q;
-- with keys, a string followed by a colon is a key and stays.
CREATE FUNCTION ferry_error_quoted(e text, q text, keys boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    parts text[] := string_to_array(e, q);
    n int := coalesce(array_length(parts, 1), 0);
    out text := '';
BEGIN
    FOR i IN 1 .. n LOOP
        -- Parts 2, 4, ... are inside quotes, when their closing quote
        -- exists (i < n).
        IF i % 2 = 0 AND i < n
           AND NOT (keys AND parts[i - 1] ~ '[{,]\s*$' AND parts[i + 1] ~ '^\s*:')
           AND ferry_error_name(parts[i]) THEN
            parts[i] := '…';
        END IF;
        IF i > 1 THEN
            out := out || q;
        END IF;
        out := out || parts[i];
    END LOOP;
    RETURN out;
END
$$;

CREATE OR REPLACE FUNCTION ferry_error_group(e text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(btrim(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        replace(
        ferry_error_quoted(
        ferry_error_quoted(
        replace(
        regexp_replace(coalesce(e, ''),
            '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'),
            '\"', chr(57344)),
            '"', true),
            chr(57344), false),
            chr(57344), '\"'),
            -- unquoted paths: rooted, or of three parts or more, or ending
            -- in a file name
            '(^|[\s(=:,])(?:~|\.{1,2})?/(?:[^\s"'',;):]|:(?=[^\s"'']))*|[^\s"''/]+(?:/[^\s"''/]+){2,}|[^\s"''/]+/[^\s"''/]*\.[A-Za-z][A-Za-z0-9]{0,7}(?=$|[\s"'',;:)])', '\1<path>', 'g'),
            -- unquoted file names
            '(^|[\s(=,])[^\s"''/:=(,]*[^\s.]\.[A-Za-z][A-Za-z0-9]{0,4}(?=$|[\s"'',;:)])', '\1<file>', 'g'),
            '[0-9a-fA-F]{16,}', '<hex>', 'g'),
            '[0-9]+\.[0-9]+|[0-9]{4,}', '<n>', 'g'),
            '\s+', ' ', 'g')),
        300)
$$;

-- The groups of the failures there are, read the new way.
UPDATE jobs SET error_group = ferry_error_group(last_error) WHERE status = 'FAILED';
