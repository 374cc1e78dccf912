package worker

import (
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// unknownJobsTotal counts messages for jobs this installation's database
// does not hold. Each one is a job some other ferry (another installation
// sharing the stream, before installations had streams of their own) will
// never see from this message: never zero for long on a healthy system.
var unknownJobsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_unknown_job_messages_total",
	Help: "Queue messages for a job this installation's database does not hold, dropped (logged with job id and subject), by target.",
}, []string{"target"})

// dropUnknown terminates the message of a job the database does not hold,
// and says so: a message dropped without a trace once left another
// installation's jobs QUEUED forever.
func (w *Worker) dropUnknown(target string, msg jetstream.Msg, id string) {
	unknownJobsTotal.WithLabelValues(target).Inc()
	w.log.Warn("message for a job this installation does not hold: dropped (does another ferry installation share this stream?)",
		"job", id, "subject", msg.Subject(), "target", target)
	_ = msg.Term()
}
