package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	attemptsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_delivery_attempts_total",
		Help: "Delivery attempts by target and outcome (SUCCESS, RETRY, FAILED, INTERRUPTED).",
	}, []string{"target", "outcome"})
	attemptSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_delivery_attempt_duration_seconds",
		Help:    "Duration of delivery attempts by target.",
		Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
	}, []string{"target"})
)

func observe(target, outcome string, d time.Duration) {
	attemptsTotal.WithLabelValues(target, outcome).Inc()
	attemptSeconds.WithLabelValues(target).Observe(d.Seconds())
}
