package targets

// Documents with versions (issue 21). A job may be a version of a
// document: one logical file at one target, named by the client's key. The
// worker then hands the connector the document in Delivery.Document, with
// what the connector reported of it at the target for earlier versions
// (Remote), and the connector delivers the version the way its system
// versions documents (a new version of the same remote document, never a
// second document), or deletes the document. What it returns in
// Result.Remote is merged into the document's remote identity for the next
// version (an empty value deletes a key).

// Document is the logical document a delivery is a version of.
type Document struct {
	// ID is ferry's id for the document: stable for its life, and a
	// stable external reference (Workfront extRefID, say) that lets a
	// connector find the remote document again after a lost answer or
	// after ferry lost its own records.
	ID string
	// Key is the client's key, unique within (tenant, target).
	Key string
	// Version is this delivery's version number, from 1.
	Version int
	// Delete says this delivery deletes the document (no file to send).
	Delete bool
	// Remote is what the connector reported for the versions delivered
	// before: empty for a first version, and after a delete.
	Remote map[string]string
}

// First reports whether this is the document's first version at the
// target: nothing is known of it there yet.
func (d *Document) First() bool { return len(d.Remote) == 0 }

// Versioner is implemented by a connector that delivers versions of
// documents. A connector without it delivers every version as a new file
// (as a job without a document).
type Versioner interface {
	// Versions says what the target, as configured, does with documents.
	Versions() VersionSupport
}

// VersionSupport says what a connector does with documents.
type VersionSupport struct {
	// Update: a new version updates the remote document. When false, a
	// version after the first fails with Refusal (unless Append).
	Update bool
	// Append: each version is delivered as another file (Blueworks
	// versions: append); the remote identity still records the latest.
	Append bool
	// Delete: the target can delete a document; the API refuses deletes
	// (422 delete_unsupported) otherwise.
	Delete bool
	// Refusal is the reason a version after the first fails when neither
	// Update nor Append: it says why and how to choose otherwise.
	Refusal string
}
