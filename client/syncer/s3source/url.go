package s3source

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ParseURL reads a source given as s3://bucket[/prefix] into a Config,
// with the credentials, region and endpoint of the AWS environment
// variables read through getenv (os.Getenv in a command; nil reads none):
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL_S3 (or
// AWS_ENDPOINT_URL). Flags the caller sets on the Config afterwards take
// precedence. Credentials in the URL itself are refused.
func ParseURL(raw string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" {
		// The raw string is not echoed: it might hold a key.
		return Config{}, errors.New("s3 source: want s3://bucket/prefix")
	}
	if u.User != nil {
		return Config{}, errors.New("s3 source: credentials do not go in the URL (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("s3 source %s: want s3://bucket/prefix", u.Redacted())
	}
	return Config{
		Endpoint:     cmp.Or(getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL")),
		Bucket:       u.Host,
		Prefix:       strings.TrimPrefix(u.Path, "/"),
		AccessKey:    getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"),
		Region:       cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		Secure:       true,
	}, nil
}

// IsURL reports whether a sync SOURCE names an S3 prefix (s3://...)
// rather than a local folder.
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// ParseEventsURL splits nats://host:port/subject (the --s3-events flag)
// into the server's URL (credentials, if any, kept) and the subject.
func ParseEventsURL(raw string) (natsURL, subject string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
		return "", "", errors.New("s3 events: want nats://host:port/subject")
	}
	subject = strings.TrimPrefix(u.Path, "/")
	if subject == "" || strings.ContainsAny(subject, " \t\r\n/") {
		return "", "", fmt.Errorf("s3 events %s: want nats://host:port/subject (one subject, dot-separated)", u.Redacted())
	}
	u.Path, u.RawPath = "", ""
	return u.String(), subject, nil
}
