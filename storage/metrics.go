package storage

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	opensTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_storage_opens_total",
		Help: "Stored files opened for delivery, by where the bytes came from: memory (a small file this process just stored) or bucket.",
	}, []string{"from"})
	opensFromMemory = opensTotal.WithLabelValues("memory")
	opensFromBucket = opensTotal.WithLabelValues("bucket")
	recentBytes     = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "ferry_recent_files_bytes",
		Help: "Memory held by the small files kept for delivery without a GET (FERRY_RECENT_FILES_BYTES bounds it).",
	})
)
