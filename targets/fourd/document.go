package fourd

import (
	"strconv"

	"github.com/ferry-relay/ferry/targets"
)

// Documents with versions (issue 21). 4D keeps one file per attribute, so
// a new version of a document is what every delivery already is, as 4D's
// $upload page shows it (4d-rest-upload.fr, "Scénario de
// téléchargement"): POST /rest/$upload, then POST
// /rest/{Dataclass}?$method=update of the same entity with its __KEY and
// current __STAMP, the attribute now holding the new file. The document's
// remote identity keeps the attribute's REST path (entity) and the
// __STAMP the update left (stamp), which the next version sends instead
// of reading the entity first; when someone saved the entity meanwhile,
// 4D refuses it as stale and the connector takes the current one from the
// answer (or reads it), as for any stale stamp. 4D's REST API documents
// no delete of a file: Versions().Delete is false.

// Keys of Result.Remote.
const (
	// RemoteEntity is "Dataclass(key)/attribute", the job's remote id.
	RemoteEntity = "entity"
	// RemoteStamp is the entity's __STAMP after the version's update.
	RemoteStamp = "stamp"
)

// Versions: a new version overwrites the attribute of the same entity; no
// delete.
func (c *Client) Versions() targets.VersionSupport {
	return targets.VersionSupport{Update: true}
}

var _ targets.Versioner = (*Client)(nil)

// result is a successful delivery's: for a document, with the entity and
// its new __STAMP (none when unknown) kept for the next version.
func (c *Client) result(d *targets.Delivery, j job, status int, stamp int64) targets.Result {
	res := targets.Result{RemoteID: j.remoteID(), StatusCode: status}
	if d.Document != nil {
		res.Remote = map[string]string{RemoteEntity: j.remoteID(), RemoteStamp: ""}
		if stamp >= 0 {
			res.Remote[RemoteStamp] = strconv.FormatInt(stamp, 10)
		}
	}
	return res
}

// rememberedStamp is the __STAMP the document's last version left on
// the same entity, if any.
func rememberedStamp(d *targets.Delivery, j job) (int64, bool) {
	if d.Document == nil || d.Document.Remote[RemoteEntity] != j.remoteID() {
		return 0, false
	}
	n, err := strconv.ParseInt(d.Document.Remote[RemoteStamp], 10, 64)
	return n, err == nil && n >= 0
}
