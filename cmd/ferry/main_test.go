package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestServeAsAUserWould builds the binary and runs it the way the README
// says: an API key from `ferry apikey create`, `ferry serve` with an
// embedded NATS server, a file delivered, then SIGTERM and a clean exit.
func TestServeAsAUserWould(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary (make test runs it)")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	_, dbURL := testenv.Postgres(t)
	s3 := testenv.S3Config()
	received := sink.New(sink.Options{})
	target := httptest.NewServer(received)
	t.Cleanup(target.Close)
	dir := t.TempDir()
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsFile, fmt.Appendf(nil, "targets:\n  - {name: archive, kind: http, url: %q}\n", target.URL+"/ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	env := append(os.Environ(),
		"FERRY_DATABASE_URL="+dbURL, "FERRY_LISTEN="+listen, "FERRY_TARGETS="+targetsFile,
		"FERRY_S3_ENDPOINT="+s3.Endpoint, "FERRY_S3_ACCESS_KEY="+s3.AccessKey, "FERRY_S3_SECRET_KEY="+s3.SecretKey,
		"FERRY_S3_BUCKET="+s3.Bucket, "FERRY_DATA_DIR="+filepath.Join(dir, "data"), "FERRY_NATS_URL=",
		"FERRY_SHUTDOWN_GRACE=5s")

	create := exec.Command(bin, "apikey", "create", "--name", "test")
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	key := strings.TrimSpace(string(out))
	if !strings.HasPrefix(key, "fy_") || strings.Contains(key, "\n") {
		t.Fatalf("apikey create printed %q, want the key alone", out)
	}

	checkKeyCommands(t, bin, env)
	checkHelpShowsNoSecret(t, bin, env)

	serve := exec.Command(bin, "serve")
	serve.Env = env
	var logs bytes.Buffer
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() { _ = serve.Process.Kill() })
	base := "http://" + listen
	waitUntil(t, 30*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	// /readyz says up or down, nothing that could name a host or user.
	ready, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var states map[string]string
	_ = json.NewDecoder(ready.Body).Decode(&states)
	ready.Body.Close()
	for name, st := range states {
		if st != "ok" {
			t.Errorf("/readyz says %s: %q, want only ok or down", name, st)
		}
	}
	if len(states) != 5 { // postgres, nats, s3, queue_repair, deliveries
		t.Errorf("/readyz: %v", states)
	}
	checkReadyDetailsForAdmins(t, bin, env, base, key)

	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("target", "archive")
	part, _ := w.CreateFormFile("file", "Facture été 2026.pdf")
	_, _ = part.Write([]byte("%PDF-1.7 ferry"))
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/uploads", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct{ Jobs []struct{ ID, Status string } }
	_ = json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || len(accepted.Jobs) != 1 {
		t.Fatalf("upload: %d %+v", resp.StatusCode, accepted)
	}
	waitUntil(t, 30*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/jobs/"+accepted.Jobs[0].ID, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var j struct{ Status string }
		_ = json.NewDecoder(resp.Body).Decode(&j)
		return j.Status == "SUCCESS"
	})
	if docs := received.Documents(); len(docs) != 1 || docs[0].Name != "Facture été 2026.pdf" {
		t.Fatalf("target received %+v", docs)
	}
	metrics, _ := http.Get(base + "/metrics")
	m, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(m), `ferry_delivery_attempts_total{outcome="SUCCESS",target="archive"} 1`) {
		t.Errorf("metrics lack the delivery:\n%s", grepLines(string(m), "ferry_"))
	}

	_ = serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop within 20s of SIGTERM\n%s", logs.String())
	}
	if strings.Contains(logs.String(), key) {
		t.Error("the API key appears in the logs")
	}
	checkTLSAndMetricsListener(t, bin, env, dir)

	// The embedded NATS server wants its token, which no log shows.
	token, err := os.ReadFile(filepath.Join(dir, "data", "nats", "ferry-nats-token"))
	if err != nil || len(bytes.TrimSpace(token)) < 32 {
		t.Fatalf("embedded NATS token: %q %v", token, err)
	}
	if strings.Contains(logs.String(), string(bytes.TrimSpace(token))) {
		t.Error("the embedded NATS token appears in the logs")
	}
}

// checkKeyCommands creates, lists and revokes keys as a user would.
func checkKeyCommands(t *testing.T, bin string, env []string) {
	t.Helper()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ferry %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("apikey", "create", "--name", "hr-uploads", "--tenant", "hr", "--role", "uploader", "--expires", "720h")
	list := run("apikey", "list")
	line := grepLines(list, "hr-uploads")
	for _, want := range []string{"fy_", " hr ", "uploader"} {
		if !strings.Contains(line, want) {
			t.Errorf("apikey list line %q lacks %q", line, want)
		}
	}
	run("apikey", "revoke", "hr-uploads")
	if line := strings.TrimSpace(grepLines(run("apikey", "list"), "hr-uploads")); !strings.HasSuffix(line, "Z") {
		t.Errorf("revoked key listed without its revocation time: %q", line)
	}
	bad := exec.Command(bin, "apikey", "create", "--name", "x", "--role", "root")
	bad.Env = env
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown role") {
		t.Errorf("create with role root: %v %s", err, out)
	}
}

// checkHelpShowsNoSecret: --help shows where secrets come from, never
// their values, though the environment holds them.
func checkHelpShowsNoSecret(t *testing.T, bin string, env []string) {
	t.Helper()
	secrets := []string{"s3-secret-in-env", "dbpassw0rd", "metrics-secret-in-env"}
	env = append(env[:len(env):len(env)], "FERRY_S3_SECRET_KEY="+secrets[0],
		"FERRY_DATABASE_URL=postgres://ferry:"+secrets[1]+"@db.example:5432/ferry?sslmode=require",
		"FERRY_METRICS_KEY="+secrets[2])
	for _, sub := range [][]string{{"serve", "--help"}, {"api", "--help"}, {"worker", "--help"}, {"migrate", "--help"}, {"apikey", "create", "--help"}} {
		cmd := exec.Command(bin, sub...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ferry %v: %v", sub, err)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("ferry %v shows a secret:\n%s", sub, grepLines(string(out), s))
			}
		}
		if !strings.Contains(string(out), "db.example") {
			t.Errorf("ferry %v hides the database host too: the URL should only lose its password", sub)
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkTLSAndMetricsListener runs `ferry api` with FERRY_TLS_CERT/KEY and
// /metrics on a listener of its own behind FERRY_METRICS_KEY.
func checkTLSAndMetricsListener(t *testing.T, bin string, env []string, dir string) {
	t.Helper()
	certFile, keyFile, pool := selfSigned(t, dir)
	listen, metricsAddr := freeAddr(t), freeAddr(t)
	api := exec.Command(bin, "api")
	api.Env = append(env[:len(env):len(env)], "FERRY_LISTEN="+listen, "FERRY_TLS_CERT="+certFile, "FERRY_TLS_KEY="+keyFile,
		"FERRY_METRICS_LISTEN="+metricsAddr, "FERRY_METRICS_KEY=metrics-key", "FERRY_NATS_URL=nats://127.0.0.1:1")
	var logs bytes.Buffer
	api.Stderr = &logs
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Process.Kill(); _ = api.Wait() })
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	waitUntil(t, 30*time.Second, func() bool {
		resp, err := client.Get("https://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	if resp, err := http.Get("http://" + listen + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS listener")
		}
	}
	if resp, err := client.Get("https://" + listen + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API listener: %v %v, want 404", err, resp)
	} else {
		resp.Body.Close()
	}
	get := func(key string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("metrics listener: %v\n%s", err, logs.String())
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without its key: %d", code)
	}
	if code := get("metrics-key"); code != http.StatusOK {
		t.Errorf("/metrics with its key: %d", code)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key under dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// checkReadyDetailsForAdmins: an admin key gets each component's details
// from /readyz (the stream's leader and replicas for the queue); an
// operator key gets the same ok/down as no key.
func checkReadyDetailsForAdmins(t *testing.T, bin string, env []string, base, operatorKey string) {
	t.Helper()
	create := exec.Command(bin, "apikey", "create", "--name", "ops-admin", "--role", "admin")
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("apikey create --role admin: %v", err)
	}
	ready := func(key string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, base+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		return m
	}
	if m := ready(operatorKey); m["details"] != nil {
		t.Errorf("/readyz gave an operator key the details: %v", m)
	}
	details, _ := ready(strings.TrimSpace(string(out)))["details"].(map[string]any)
	if nats, _ := details["nats"].(string); nats != "single server" {
		t.Errorf("/readyz details for an admin: %v, want nats: single server", details)
	}
	if repair, _ := details["queue_repair"].(string); repair != "ok" {
		t.Errorf("/readyz details for an admin: %v, want queue_repair: ok", details)
	}
}
