package apitypes

import "time"

// Activity is the body of GET /v1/activity: what each target did in the
// window up to now.
type Activity struct {
	WindowSeconds int              `json:"window_seconds"`
	Targets       []TargetActivity `json:"targets"`
}

// TargetActivity is what one target did lately.
type TargetActivity struct {
	Target string `json:"target"`
	// InFlight are its RUNNING jobs.
	InFlight int64 `json:"in_flight"`
	// Delivered and Failed are the jobs that became SUCCESS or FAILED in
	// the window; RateLimited the attempts the target answered HTTP 429.
	Delivered   int64 `json:"delivered"`
	Failed      int64 `json:"failed"`
	RateLimited int64 `json:"rate_limited"`
	// PerMinute are the deliveries of each minute of the window, oldest
	// first.
	PerMinute []int64 `json:"per_minute"`
}

// FailureGroup is the FAILED jobs of a batch that failed for one reason.
type FailureGroup struct {
	// Group is the normalised error: what varies from file to file (ids,
	// quoted names, long numbers) replaced by placeholders. Pass it as
	// error_group to POST /v1/batches/{name}/retry to re-queue the group.
	Group string `json:"group"`
	Count int64  `json:"count"`
	// Example is the error of the group's latest job, ExampleJob its id.
	Example    string     `json:"example"`
	ExampleJob string     `json:"example_job"`
	FirstSeen  *time.Time `json:"first_seen"`
	LastSeen   *time.Time `json:"last_seen"`
}

// FailureGroups is the body of GET /v1/batches/{name}/failures: the
// largest groups first (at most 50).
type FailureGroups struct {
	Groups []FailureGroup `json:"groups"`
}

// ThroughputPoint is how many of a batch's jobs became final in one bucket
// of time.
type ThroughputPoint struct {
	At time.Time `json:"at"`
	// Seconds is the bucket's width: 60 for the last minutes, 600 before.
	Seconds      int   `json:"seconds"`
	Success      int64 `json:"success"`
	SuccessBytes int64 `json:"success_bytes"`
	Failed       int64 `json:"failed"`
}

// Throughput is the body of GET /v1/batches/{name}/throughput: the
// batch's deliveries over its life, oldest bucket first.
type Throughput struct {
	Points []ThroughputPoint `json:"points"`
}
