package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is the small reverse proxy in front of the API processes of
// make cluster (nginx plays it in docker-compose.cluster.yml): round robin
// over the APIs whose /healthz answered in the last second, so a client
// that retries lands on a live one.
type proxy struct {
	backends []*url.URL
	next     atomic.Uint64
	mu       sync.Mutex
	up       []bool
}

func newProxy(addrs []string) *proxy {
	p := &proxy{up: make([]bool, len(addrs))}
	for i, a := range addrs {
		p.backends = append(p.backends, &url.URL{Scheme: "http", Host: a})
		p.up[i] = true
	}
	return p
}

// check marks each backend up or down by its /healthz, every second.
func (p *proxy) check(ctx context.Context) {
	cl := &http.Client{Timeout: time.Second}
	for {
		for i, b := range p.backends {
			resp, err := get(ctx, cl, b.String()+"/healthz")
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			p.mu.Lock()
			p.up[i] = ok
			p.mu.Unlock()
		}
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

// pick returns the next live backend, or any when none looks live.
func (p *proxy) pick() *url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := uint64(len(p.backends))
	start := p.next.Add(1)
	for i := range n {
		if k := (start + i) % n; p.up[k] {
			return p.backends[k]
		}
	}
	return p.backends[start%n]
}

// serve runs the proxy on ln until ctx ends.
func (p *proxy) serve(ctx context.Context, ln net.Listener) {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(p.pick())
			r.SetXForwarded()
		},
		FlushInterval: -1,
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go p.check(ctx)
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	_ = srv.Serve(ln)
}

// get is cl.Get bound to ctx: a stopped proxy ends its health checks.
func get(ctx context.Context, cl *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return cl.Do(req)
}
