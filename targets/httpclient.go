package targets

import (
	"net/http"
)

// HTTPClient is the HTTP client every connector talks to its target with.
//
//   - A transport of its own, cloned from http.DefaultTransport (proxy from
//     the environment, dial and TLS handshake timeouts, HTTP/2), keeping
//     cfg.Concurrency idle connections per host: with the default
//     transport's 2, concurrent deliveries to one host would open and close
//     a connection each.
//   - Redirects are not followed: following one would carry the
//     connector's credentials (a bearer token, an API key, a session
//     cookie) wherever it points, cannot replay a streamed body, and turns
//     a POST into a GET on 301/302/303. The 3xx reaches the connector,
//     which reports it (StatusError makes it permanent, naming the status).
//   - No overall timeout: the delivery's context bounds each attempt,
//     uploads included.
//   - A request of a traced delivery is a client span and carries the
//     W3C traceparent, unless the target's traceparent setting is false
//     (tracing.go).
func HTTPClient(cfg Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(cfg.Concurrency, 2)
	return &http.Client{
		Transport:     &tracingTransport{next: tr, propagate: cfg.SendsTraceparent()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
