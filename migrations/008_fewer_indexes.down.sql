CREATE INDEX jobs_status_id ON jobs (status, id DESC);
CREATE INDEX jobs_target_id ON jobs (target, id DESC);
CREATE INDEX jobs_tenant_id ON jobs (tenant, id DESC);
