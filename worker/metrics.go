package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ferry-relay/ferry/jobs"
)

var (
	attemptsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_delivery_attempts_total",
		Help: "Delivery attempts by target and outcome (SUCCESS, RETRY, FAILED, INTERRUPTED).",
	}, []string{"target", "outcome"})
	uncertainTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_uncertain_redeliveries_total",
		Help: "Attempts that repeated a creating step whose earlier try may have landed unheard, on a target with no way to ask (the target may hold the file twice), by target.",
	}, []string{"target"})
	targetsPaused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_target_pauses_total",
		Help: "Times a target was paused because it refused its credentials, by target.",
	}, []string{"target"})
	storagePauses = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_storage_pauses_total",
		Help: "Times this process paused its deliveries because object storage did not answer a read.",
	})
	supersededTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_versions_superseded_total",
		Help: "Versions of documents that failed retryably while a newer version of their document was accepted, and were made SUPERSEDED instead of waiting for a retry, by target.",
	}, []string{"target"})
	attemptSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_delivery_attempt_duration_seconds",
		Help:    "Duration of delivery attempts by target.",
		Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
	}, []string{"target"})
	deliveredSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_delivery_latency_seconds",
		Help:    "Time from upload (the job recorded) to its successful delivery, retries and waits included, by target.",
		Buckets: prometheus.ExponentialBuckets(0.05, 4, 10), // 50 ms to 3.6 h
	}, []string{"target"})
)

// observe counts an attempt of the given outcome that took d; a
// successful one also records how long after its upload (age) the file
// arrived.
func observe(target, outcome string, d, age time.Duration) {
	attemptsTotal.WithLabelValues(target, outcome).Inc()
	attemptSeconds.WithLabelValues(target).Observe(d.Seconds())
	if outcome == jobs.OutcomeSuccess {
		deliveredSeconds.WithLabelValues(target).Observe(age.Seconds())
	}
}

// initSeries creates each target's series at 0, so that a dashboard's
// rates and an alert's ratios are defined before the first delivery (and
// the rare ones, pauses and uncertain redeliveries, exist at all).
func initSeries(targets []string) {
	for _, t := range targets {
		for _, o := range []string{jobs.OutcomeSuccess, jobs.OutcomeRetry, jobs.OutcomeFailed, jobs.OutcomeInterrupted} {
			attemptsTotal.WithLabelValues(t, o)
		}
		uncertainTotal.WithLabelValues(t)
		targetsPaused.WithLabelValues(t)
	}
}
