package workfronthook

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/ferry-relay/ferry/targets"
)

// Documents with versions (issue 21). Spec 1.1 of Document Webhooks
// ("Chargement de fichiers via Document Webhooks",
// workfront-document-webhooks-upload.fr) gives uploadInit the Workfront
// document's id (documentId) and its version's id (documentVersionId). ferry
// plays Workfront's part: every version of a document goes through
// uploadInit with the same documentId and a documentVersionId of its own,
// then upload, so that the provider files it as a new version of the same
// document. ferry's ids are shaped like Workfront's (32 hex digits),
// derived from ferry's document id (and the version number), so a repeat
// sends the same ones: documentId is param.documentId when the upload gives
// it (a real Workfront document), else derived; documentVersionId is
// always derived. The document's remote identity keeps the provider's id
// (provider_id) and the two ids.
//
// The spec promises nothing about a repeated uploadInit: a repeat after a
// lost answer is still marked uncertain, exactly-once only at a provider
// that recognises the repeated documentVersionId (as ferry's fake does).
// The upload API has no delete: Versions().Delete is false.

// Keys of Result.Remote.
const (
	RemoteProviderID = "provider_id"
	RemoteDocumentID = "document_id"
	RemoteVersionID  = "version_id"
)

// Versions: a new version goes to the same document through spec 1.1's
// ids; no delete.
func (c *Client) Versions() targets.VersionSupport {
	return targets.VersionSupport{Update: true}
}

// workfrontIDs are the documentId and documentVersionId uploadInit sends:
// the job's parameters for a job without a document; for a version of a
// document, its documentId and a documentVersionId of the version.
func workfrontIDs(d *targets.Delivery) map[string]string {
	ids := map[string]string{
		ParamDocumentID:        d.Params[ParamDocumentID],
		ParamDocumentVersionID: d.Params[ParamDocumentVersionID],
	}
	if doc := d.Document; doc != nil {
		switch {
		case doc.Remote[RemoteDocumentID] != "":
			ids[ParamDocumentID] = doc.Remote[RemoteDocumentID]
		case ids[ParamDocumentID] == "":
			ids[ParamDocumentID] = derivedID("document", doc.ID)
		}
		ids[ParamDocumentVersionID] = derivedID("version", doc.ID, strconv.Itoa(doc.Version))
	}
	return ids
}

// derivedID is a stable id of 32 hex digits, as Workfront's are.
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// withRemote adds a document's remote identity to a successful result.
func withRemote(res targets.Result, d *targets.Delivery, err error) targets.Result {
	if err != nil || d.Document == nil {
		return res
	}
	ids := workfrontIDs(d)
	res.Remote = map[string]string{
		RemoteProviderID: res.RemoteID,
		RemoteDocumentID: ids[ParamDocumentID],
		RemoteVersionID:  ids[ParamDocumentVersionID],
	}
	return res
}

// uncertainInit is the reason a repeated uploadInit is uncertain.
func uncertainInit(d *targets.Delivery) string {
	if d.Document != nil {
		return "uploadInit repeated after its answer was lost: unless the provider recognises the repeated documentVersionId, it may hold an empty version or document from the earlier try"
	}
	return "uploadInit repeated after its answer was lost: the provider may hold an empty document from the earlier try"
}
