package s3source_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/internal/testenv"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN",
		"AWS_DEFAULT_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
	}
	tests := []struct {
		raw     string
		env     map[string]string
		want    s3source.Config
		wantErr bool
	}{
		{"s3://bucket/in/box", env, s3source.Config{Endpoint: "http://127.0.0.1:9000", Bucket: "bucket", Prefix: "in/box",
			AccessKey: "AKID", SecretKey: "SECRET", SessionToken: "TOKEN", Region: "eu-west-3", Secure: true}, false},
		{"s3://bucket", nil, s3source.Config{Bucket: "bucket", Secure: true}, false},
		{"s3://bucket/", map[string]string{"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r2", "AWS_ENDPOINT_URL_S3": "https://s3.example",
			"AWS_ENDPOINT_URL": "https://other"}, s3source.Config{Bucket: "bucket", Region: "r1", Endpoint: "https://s3.example", Secure: true}, false},
		{"s3://AKID:hunter2@bucket/p", nil, s3source.Config{}, true},
		{"/home/docs", nil, s3source.Config{}, true},
		{"s3:///prefix", nil, s3source.Config{}, true},
		{"s3://bucket/p?x=1", nil, s3source.Config{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			got, err := s3source.ParseURL(tc.raw, func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want an error: %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
			if !tc.wantErr && fmt.Sprintf("%#v", []any{got.Endpoint, got.Bucket, got.Prefix, got.AccessKey, got.SecretKey, got.SessionToken, got.Region, got.Secure}) !=
				fmt.Sprintf("%#v", []any{tc.want.Endpoint, tc.want.Bucket, tc.want.Prefix, tc.want.AccessKey, tc.want.SecretKey, tc.want.SessionToken, tc.want.Region, tc.want.Secure}) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	if !s3source.IsURL("s3://b/p") || s3source.IsURL("/srv/s3://x") {
		t.Error("IsURL")
	}
}

func TestParseEventsURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, url, subject string
		wantErr           bool
	}{
		{"nats://127.0.0.1:4222/minio.events", "nats://127.0.0.1:4222", "minio.events", false},
		{"nats://user:pw@nats.local:4222/bucket.docs", "nats://user:pw@nats.local:4222", "bucket.docs", false},
		{"tls://nats.local/ev", "tls://nats.local", "ev", false},
		{"nats://127.0.0.1:4222", "", "", true},
		{"nats://127.0.0.1:4222/a/b", "", "", true},
		{"http://127.0.0.1:4222/x", "", "", true},
	}
	for _, tc := range tests {
		u, subj, err := s3source.ParseEventsURL(tc.raw)
		if (err != nil) != tc.wantErr || u != tc.url || subj != tc.subject {
			t.Errorf("%s: %q %q %v", tc.raw, u, subj, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: the error shows the password: %v", tc.raw, err)
		}
	}
}

// A secret key is in no String, no formatting of the Config, no log line
// and no error, not even the service's refusal of it.
func TestSecretsNotPrinted(t *testing.T) {
	t.Parallel()
	const secret = "sEcReT-kEy-42"
	cfg := config("whatever", "docs")
	cfg.SecretKey, cfg.SessionToken = secret, secret
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg)
	shown := []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, &cfg), logged.String()}

	b := newBucket(t)
	cfg.Bucket = b.name
	_, err := s3source.New(testenv.Context(t), cfg)
	if err == nil {
		t.Fatal("new with a wrong secret key: no error")
	}
	t.Logf("refused key: %v", err)
	shown = append(shown, err.Error(), fmt.Sprintf("%+v", err))
	for _, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("the secret is shown: %s", s)
		}
	}
	if !strings.Contains(cfg.String(), "s3://"+b.name+"/docs/") {
		t.Errorf("String: %s", cfg.String())
	}
}
