-- Delivery health of each target, shared by every process: workers write
-- it, API processes read it (GET /v1/targets). One row per target that
-- ever left "ok"; no row means ok. Meant to grow columns: the dashboard
-- reads it whole, the adaptive rate adds its current rate here.
CREATE TABLE target_states (
    target        text        PRIMARY KEY,
    state         text        NOT NULL DEFAULT 'ok'
                  CHECK (state IN ('ok', 'circuit_open', 'paused_credentials')),
    -- why it left ok: the last refusal, without secrets
    reason        text        NOT NULL DEFAULT '',
    since         timestamptz NOT NULL DEFAULT now(),
    -- while paused_credentials: the wait between probes (doubling while
    -- they fail) and when the next probe is due; a worker claims a probe
    -- by moving next_probe_at, so one process probes at a time
    probe_every   interval    NOT NULL DEFAULT '1 minute',
    next_probe_at timestamptz,
    -- the process that made the last change
    changed_by    text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Shared concurrency caps (limit_group, max_in_flight, a Workfront
-- instance's ten requests): one row per slot held. A worker takes a free
-- slot number below the cap before it fetches a job, renews its slots
-- while the deliveries run, and deletes the row when the delivery ends. A
-- worker that dies stops renewing: its slots expire and count no more.
CREATE TABLE limit_slots (
    grp        text        NOT NULL,
    slot       integer     NOT NULL CHECK (slot >= 0),
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (grp, slot)
);

CREATE INDEX limit_slots_holder ON limit_slots (holder);

-- An attempt that repeated a creating step whose earlier try may have
-- landed unheard, on a target with no way to ask: why, or NULL.
ALTER TABLE attempts ADD COLUMN uncertain text;
CREATE INDEX attempts_uncertain ON attempts (job_id) WHERE uncertain IS NOT NULL;
