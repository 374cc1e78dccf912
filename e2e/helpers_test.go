package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
)

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// countObjects counts the objects and incomplete uploads in the bucket.
func countObjects(t *testing.T, p *pipeline) int {
	t.Helper()
	n := 0
	c := p.objects.Client()
	for obj := range c.ListObjects(context.Background(), p.objects.Bucket(), minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		n++
	}
	for up := range c.ListIncompleteUploads(context.Background(), p.objects.Bucket(), "", true) {
		if up.Err == nil {
			n++
		}
	}
	return n
}
