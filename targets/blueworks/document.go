package blueworks

import (
	"errors"
	"strings"

	"github.com/ferry-relay/ferry/targets"
)

// Documents with versions (issue 21). Blueworks Live's public API
// ("FileUpload", blueworks-live-fileupload.en: POST /scr/api/FileUpload
// "adds file attachments") only adds an attachment: it has no versions and
// no replace, and no delete. So the target chooses, with the targets
// file's versions setting:
//   - refuse (the default): a version after the first fails, with a
//     reason that says why and how to choose otherwise;
//   - append: each version is another attachment on the same item; the
//     document's remote identity keeps the latest attachment's id
//     (attachment_id) and all of them (attachment_ids, comma-separated).

// Keys of Result.Remote.
const (
	RemoteAttachmentID  = "attachment_id"
	RemoteAttachmentIDs = "attachment_ids"
)

// refusal is why a new version is refused with versions: refuse.
const refusal = "blueworks: Blueworks Live's public API has no document versions and cannot replace an attachment " +
	"(FileUpload only adds one), so a new version of a document is refused; to deliver each version as another " +
	"attachment on the same item, set versions: append on the target"

// Versions: with versions: append each version is another attachment;
// with refuse a version after the first fails with the reason. No delete.
func (c *Client) Versions() targets.VersionSupport {
	if c.s.Versions == targets.VersionsAppend {
		return targets.VersionSupport{Append: true}
	}
	return targets.VersionSupport{Refusal: refusal}
}

// checkDocument refuses what the target cannot do with a document: a
// delete, and a later version unless versions: append. The worker refuses
// them before a delivery too; this keeps the connector right on its own.
func (c *Client) checkDocument(d *targets.Delivery) error {
	switch doc := d.Document; {
	case doc == nil:
		return nil
	case doc.Delete:
		return targets.Permanent(errors.New("blueworks: Blueworks Live's public API has no delete of an attachment: a document cannot be deleted"))
	case c.s.Versions != targets.VersionsAppend && doc.Version > 1:
		return targets.Permanent(errors.New(refusal))
	}
	return nil
}

// withRemote adds, for a document, the attachment to its remote identity.
func withRemote(res targets.Result, d *targets.Delivery, err error) targets.Result {
	if err != nil || d.Document == nil || res.RemoteID == "" {
		return res
	}
	ids := d.Document.Remote[RemoteAttachmentIDs]
	if ids == "" {
		ids = res.RemoteID
	} else if !strings.HasSuffix(ids, ","+res.RemoteID) && ids != res.RemoteID {
		ids += "," + res.RemoteID
	}
	res.Remote = map[string]string{RemoteAttachmentID: res.RemoteID, RemoteAttachmentIDs: ids}
	return res
}
