-- The shared, adaptive request rate of each target (issue 13): a token
-- bucket that every worker process takes from, whose rate AIMD lowers on a
-- 429 or 503 and raises again slowly, never above max_rate (the target's
-- configured `rate`).
--
-- UNLOGGED: the bucket is a few seconds of pacing state, not a record. No
-- WAL means a token costs no disk flush at commit (4.8 ms -> see
-- BENCHMARKS.md); a Postgres crash empties the table, and the workers
-- create each target's row again at their next request.
CREATE UNLOGGED TABLE target_rates (
    target       text PRIMARY KEY,
    max_rate     double precision NOT NULL CHECK (max_rate > 0),
    burst        double precision NOT NULL CHECK (burst >= 1),
    rate         double precision NOT NULL CHECK (rate > 0),
    -- Tokens in the bucket at updated_at; negative while requests wait for
    -- tokens already promised to them.
    tokens       double precision NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    decreased_at timestamptz NOT NULL DEFAULT '-infinity',
    increased_at timestamptz NOT NULL DEFAULT '-infinity'
);
