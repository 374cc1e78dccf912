package s3source

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7"
)

// ferryPrefix is where ferry's storage keeps its files: "objects/<job
// id>", the job id a lowercase UUID (storage.KeyFor). The client does not
// import the server's storage package; a test there keeps the two in
// step (TestRefusesFerryBucket stores through package storage).
const ferryPrefix = "objects/"

// ferryKeyRE is the shape of a key ferry's storage writes.
var ferryKeyRE = regexp.MustCompile(`^objects/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ferryProbe is how many keys under ferryPrefix Check looks at.
const ferryProbe = 100

func isFerryKey(key string) bool {
	return strings.HasPrefix(key, ferryPrefix) && ferryKeyRE.MatchString(key)
}

// refuseFerryBucket looks at the first keys under ferry's prefix, in
// whatever part of the bucket the source covers: one of ferry's makes the
// bucket ferry's. (A ferry bucket that holds nothing yet cannot be told
// from any empty bucket; Walk refuses it as soon as it lists a ferry key.)
func (s *Source) refuseFerryBucket(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	noOwner := false
	opts := minio.ListObjectsOptions{Prefix: ferryPrefix, Recursive: true, MaxKeys: ferryProbe, FetchOwner: &noOwner}
	n := 0
	for obj := range s.client.ListObjectsIter(ctx, s.cfg.Bucket, opts) {
		if obj.Err != nil {
			if accessDenied(obj.Err) {
				// Credentials limited to the source's prefix: ferry's
				// own keys would list "objects/", these cannot. Walk
				// still refuses any ferry key it meets.
				return nil
			}
			return s.wrap("check bucket", obj.Err)
		}
		if isFerryKey(obj.Key) {
			return s.ferryBucketError(obj.Key)
		}
		if n++; n >= ferryProbe {
			break
		}
	}
	return nil
}

func (s *Source) ferryBucketError(key string) error {
	return fmt.Errorf("%s: bucket %s holds ferry's stored uploads (%s...): %w; "+
		"sync reads the bucket your documents arrive in, never the one ferry keeps them in",
		s, s.cfg.Bucket, key[:len(ferryPrefix)+8], ErrFerryBucket)
}
