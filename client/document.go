package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferry-relay/ferry/apitypes"
)

// DocumentFilter selects documents for Documents. Empty fields match
// everything.
type DocumentFilter struct {
	Target string
	// Batch keeps the documents with a version uploaded in this batch.
	Batch string
	// KeyPrefix keeps the documents whose key starts with it.
	KeyPrefix string
	// State is apitypes.DocumentActive or apitypes.DocumentDeleted.
	State string
	// Limit is the page size (the server's default if 0).
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

func (f DocumentFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"target": f.Target, "batch": f.Batch, "key_prefix": f.KeyPrefix,
		"state": f.State, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// Documents returns a page of the documents matching f, by key, and the
// cursor of the next page in NextCursor ("" on the last).
func (c *Client) Documents(ctx context.Context, f DocumentFilter) (apitypes.DocumentList, error) {
	var out apitypes.DocumentList
	_, err := c.call(ctx, http.MethodGet, "/v1/documents", f.query(), nil, &out)
	return out, err
}

// EachDocument calls fn with every document matching f, page after page
// from f.Cursor, until the last page or an error of fn.
func (c *Client) EachDocument(ctx context.Context, f DocumentFilter, fn func(apitypes.Document) error) error {
	for {
		page, err := c.Documents(ctx, f)
		if err != nil {
			return err
		}
		for _, d := range page.Documents {
			if err := fn(d); err != nil {
				return err
			}
		}
		if page.NextCursor == "" || page.NextCursor == f.Cursor {
			return nil
		}
		f.Cursor = page.NextCursor
	}
}

// Document returns the document with id and every version of it (History,
// oldest first).
func (c *Client) Document(ctx context.Context, id string) (apitypes.Document, error) {
	var out apitypes.Document
	_, err := c.call(ctx, http.MethodGet, documentPath(id), nil, nil, &out)
	return out, err
}

// DeleteDocument records the deletion of the document key at target: a
// delete job, delivered after the document's versions (those not started
// yet become SUPERSEDED). It returns that job. A target whose system has
// no delete is an *Error with status 422 and code delete_unsupported.
func (c *Client) DeleteDocument(ctx context.Context, target, key string) (apitypes.Job, error) {
	var out apitypes.Job
	_, err := c.call(ctx, http.MethodDelete, "/v1/documents", url.Values{"target": {target}, "key": {key}}, nil, &out)
	return out, err
}

// DeleteDocumentByID is DeleteDocument of the document with id.
func (c *Client) DeleteDocumentByID(ctx context.Context, id string) (apitypes.Job, error) {
	var out apitypes.Job
	_, err := c.call(ctx, http.MethodDelete, documentPath(id), nil, nil, &out)
	return out, err
}

func documentPath(id string) string { return "/v1/documents/" + url.PathEscape(id) }
