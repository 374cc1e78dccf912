package api

import (
	"net/url"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/jobs"
)

// The API's edge: the job store's types become the wire types of
// apitypes here, and nowhere else.

func wireJob(j jobs.Job) apitypes.Job {
	return apitypes.Job{
		ID: j.ID, Tenant: j.Tenant, Target: j.Target, Batch: j.Batch, Filename: j.Filename, ContentType: j.ContentType,
		Size: j.Size, SHA256: j.SHA256, Params: j.Params, Status: apitypes.Status(j.Status),
		Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, NextAttemptAt: j.NextAttemptAt,
		LastError: j.LastError, RemoteID: j.RemoteID, Checkpoint: j.Checkpoint,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, FinishedAt: j.FinishedAt,
		Document: j.DocumentID, DocumentKey: j.DocumentKey, Version: j.Version,
		URL: "/v1/jobs/" + url.PathEscape(j.ID),
	}
}

func wireJobs(js []jobs.Job) []apitypes.Job {
	out := make([]apitypes.Job, len(js))
	for i, j := range js {
		out[i] = wireJob(j)
	}
	return out
}

func wireAttempts(as []jobs.Attempt) []apitypes.Attempt {
	out := make([]apitypes.Attempt, len(as))
	for i, a := range as {
		out[i] = apitypes.Attempt{Number: a.Number, Worker: a.Worker, StartedAt: a.StartedAt,
			FinishedAt: a.FinishedAt, Outcome: a.Outcome, HTTPStatus: a.HTTPStatus, Error: a.Error,
			DurationMS: a.DurationMS, Uncertain: a.Uncertain}
	}
	return out
}

func wireBatch(b jobs.Batch) apitypes.Batch {
	return apitypes.Batch{Name: b.Name, Tenant: b.Tenant, Target: b.Target, Params: b.Params, CreatedAt: b.CreatedAt,
		URL: "/v1/batches/" + url.PathEscape(b.Name)}
}

func wireCount(c jobs.Count) apitypes.Count { return apitypes.Count{Files: c.Files, Bytes: c.Bytes} }

func wireSummary(s jobs.BatchSummary) apitypes.BatchSummary {
	by := make(map[apitypes.Status]apitypes.Count, len(s.ByStatus))
	for st, c := range s.ByStatus {
		by[apitypes.Status(st)] = wireCount(c)
	}
	return apitypes.BatchSummary{Name: s.Name, Tenant: s.Tenant, Target: s.Target, Params: s.Params, ByStatus: by,
		Total: wireCount(s.Total), Pending: wireCount(s.Pending), Final: wireCount(s.Final),
		StartedAt: s.StartedAt, UpdatedAt: s.UpdatedAt, FilesPerSecond: s.FilesPerSecond,
		BytesPerSecond: s.BytesPerSecond, ETASeconds: s.ETASeconds}
}

func wireBatchPage(p jobs.BatchPage) apitypes.BatchPage {
	out := apitypes.BatchPage{Batches: make([]apitypes.BatchSummary, len(p.Batches)), NextCursor: p.NextCursor}
	for i, s := range p.Batches {
		out.Batches[i] = wireSummary(s)
	}
	return out
}

func wireReportRow(r jobs.ReportRow) apitypes.ReportRow {
	return apitypes.ReportRow{Path: r.Path, JobID: r.JobID, Status: apitypes.Status(r.Status),
		Attempts: r.Attempts, RemoteID: r.RemoteID, SHA256: r.SHA256, Size: r.Size,
		LastError: r.LastError, FinishedAt: r.FinishedAt}
}

func storeRequeueFilter(f apitypes.RequeueFilter) jobs.RequeueFilter {
	return jobs.RequeueFilter{Target: f.Target, Batch: f.Batch, Error: f.Error}
}
