package workfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-relay/ferry/targets"
)

// Documents with versions (issue 21). Version 1 of a document creates a
// Workfront document as a job without one does, with extRefID
// "ferry:<ferry's document id>", stable for the document's life. A later
// version adds a version to that document, as Workfront's REST API
// models it (Workfront REST API basics, "Opérations": POST inserts an
// object; the object is a DocumentVersion, ObjCode DOCV, in Workfront's
// API Explorer): the file is uploaded for a handle (POST upload), then
// POST docv with updates={"documentID","handle","fileName","version"}.
// Never a second document.
//
// Lost answers. A document ferry knows no Workfront ID of (a first
// version, or any version after ferry lost its records) is first searched
// by its extRefID (GET document/search): found, it is the document, and a
// first version is done. Before docv is sent the checkpoint records it
// (docv_sent); a later attempt that finds the mark, or that found the
// document by search, first asks GET docv/search?documentID=&version=
// for the version's label (v<n>.0): there, the version is done. A search
// that fails in any way creates nothing and fails the attempt, retryably.
//
// A delete is DELETE document/{id} ("DELETE - Supprime un objet"); a
// document Workfront does not know (NotFound: an earlier attempt deleted
// it and its answer was lost) counts as deleted.

// ExtRefIDPrefix starts the extRefID of a document's Workfront document:
// "ferry:" and ferry's document id.
const ExtRefIDPrefix = "ferry:"

// Keys of Result.Remote.
const (
	// RemoteDocumentID is the Workfront document's ID.
	RemoteDocumentID = "document_id"
	// RemoteVersionID is the ID of the DocumentVersion the last version
	// made ("" for a first version: its creation made it).
	RemoteVersionID = "version_id"
)

// CheckpointDocvSent is set before a new version (docv) is sent.
const CheckpointDocvSent = "docv_sent"

// Steps of versions, as errors name them.
const (
	stepDocv       = "docv"
	stepDocvSearch = "docv search"
	stepDelete     = "delete"
)

// Versions: a new version becomes a version of the same Workfront
// document; a delete deletes it.
func (c *Client) Versions() targets.VersionSupport {
	return targets.VersionSupport{Update: true, Delete: true}
}

// deliverDocument delivers a version of a document, or deletes it.
func (c *Client) deliverDocument(ctx context.Context, at *attempt, d *targets.Delivery) (targets.Result, error) {
	doc := newDocSpec(d)
	if d.Document.Delete {
		return c.deleteDocument(ctx, at, d, doc)
	}
	docID := d.Document.Remote[RemoteDocumentID]
	found := false
	if docID == "" {
		id, err := c.landed(ctx, at, doc)
		if err != nil {
			return targets.Result{}, err
		}
		if id == "" {
			if id, err = c.deliverFile(ctx, at, d, doc, false); err != nil {
				return targets.Result{}, err
			}
			return documentResult(id, ""), nil
		}
		if d.Document.Version == 1 {
			return documentResult(id, ""), nil
		}
		docID, found = id, true
	}
	vid, err := c.addVersion(ctx, at, d, doc, docID, found)
	if err != nil {
		return targets.Result{}, err
	}
	return documentResult(docID, vid), nil
}

func documentResult(docID, versionID string) targets.Result {
	return targets.Result{RemoteID: docID, StatusCode: http.StatusOK,
		Remote: map[string]string{RemoteDocumentID: docID, RemoteVersionID: versionID}}
}

// addVersion uploads the file unless an earlier attempt did and adds it
// as a version of docID, unless an earlier attempt did: when ask, or when
// an earlier attempt got that far, it asks first.
func (c *Client) addVersion(ctx context.Context, at *attempt, d *targets.Delivery, doc docSpec, docID string, ask bool) (string, error) {
	handle := d.Checkpoint[CheckpointHandle]
	fromEarlier := handle != ""
	if ask || fromEarlier || d.Checkpoint[CheckpointDocvSent] != "" {
		if vid, err := c.versionLanded(ctx, at, docID, doc.version); err != nil || vid != "" {
			return vid, err
		}
	}
	var err error
	if handle == "" {
		if handle, err = c.upload(ctx, at, d); err != nil {
			return "", err
		}
	}
	vid, err := c.docvOnce(ctx, at, d, doc, docID, handle)
	if err != nil && refused(err) && fromEarlier {
		// The handle is spent or expired, and the search said no version
		// holds it: upload again.
		if handle, err = c.upload(ctx, at, d); err == nil {
			vid, err = c.docvOnce(ctx, at, d, doc, docID, handle)
		}
	}
	return vid, err
}

// versionLanded asks for the version labelled label of docID: its ID, or
// "" on a definite empty answer; any failure is a retryable error.
func (c *Client) versionLanded(ctx context.Context, at *attempt, docID, label string) (string, error) {
	q := url.Values{"documentID": {docID}, "version": {label}, "fields": {"ID,version"}}
	var out []struct {
		ID string `json:"ID"`
	}
	err := c.call(ctx, at, stepDocvSearch, getRequest(c.api+"/docv/search?"+q.Encode()), &out)
	switch {
	case err == nil && len(out) > 0:
		return out[0].ID, nil
	case err == nil:
		return "", nil
	case targets.IsCredentials(err):
		return "", err
	}
	te := targets.Classify(err)
	return "", &targets.Error{
		Err:        fmt.Errorf("cannot tell whether an earlier attempt added the version, so not adding it: %w", err),
		RetryAfter: te.RetryAfter, StatusCode: te.StatusCode,
	}
}

// docvOnce records in the checkpoint that the version is being sent, then
// sends POST docv, and returns the version's ID.
func (c *Client) docvOnce(ctx context.Context, at *attempt, d *targets.Delivery, doc docSpec, docID, handle string) (string, error) {
	if d.Checkpoint[CheckpointDocvSent] == "" {
		if err := d.Save(ctx, targets.Checkpoint{CheckpointDocvSent: "1"}); err != nil {
			return "", fmt.Errorf("save checkpoint: %w", err)
		}
	}
	u, err := json.Marshal(map[string]string{
		"documentID": docID, "handle": handle, "fileName": doc.fileName, "version": doc.version,
	})
	if err != nil {
		return "", targets.Permanent(fmt.Errorf("%s: %w", stepDocv, err))
	}
	form := url.Values{"updates": {string(u)}}.Encode()
	var out struct {
		ID string `json:"ID"`
	}
	err = c.call(ctx, at, stepDocv, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/docv", strings.NewReader(form))
		if err != nil {
			return nil, targets.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}, &out)
	if err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("docv: Workfront answered no ID")
	}
	return out.ID, nil
}

// deleteDocument deletes the document's Workfront document, found by its
// extRefID when ferry has not its ID. None there, or NotFound, is done.
func (c *Client) deleteDocument(ctx context.Context, at *attempt, d *targets.Delivery, doc docSpec) (targets.Result, error) {
	gone := targets.Result{StatusCode: http.StatusOK, Remote: map[string]string{RemoteDocumentID: "", RemoteVersionID: ""}}
	docID := d.Document.Remote[RemoteDocumentID]
	if docID == "" {
		id, err := c.landed(ctx, at, doc)
		if err != nil || id == "" {
			return gone, err
		}
		docID = id
	}
	gone.RemoteID = docID
	var out json.RawMessage
	err := c.call(ctx, at, stepDelete, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.api+"/document/"+url.PathEscape(docID), nil)
		if err != nil {
			return nil, targets.Permanent(err)
		}
		return req, nil
	}, &out)
	var ae *APIError
	if err != nil && (!errors.As(err, &ae) || !strings.HasSuffix(ae.Class, "NotFoundException")) {
		return targets.Result{}, err
	}
	return gone, nil
}

// getRequest builds a GET of u.
func getRequest(u string) buildFunc {
	return func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, targets.Permanent(err)
		}
		return req, nil
	}
}
