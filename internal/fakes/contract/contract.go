// Package contract is what every fake target system in fakes/ offers the
// connector test suite (targets/targetstest): the documents it holds and
// the faults it can inject. It is apart from the suite so that the fakes,
// which the ferry binary links for "ferry fake", do not import package
// testing.
package contract

import "time"

// Document is a file complete in a fake target: bytes arrived and, for
// multi-step protocols, attached where they belong.
type Document struct {
	// RemoteID is the id the fake gave the document; the connector must
	// return it as Result.RemoteID.
	RemoteID string
	// Name is the filename the fake recorded.
	Name string
	// SHA256 is the hex SHA-256 of the bytes the fake received.
	SHA256 string
	// Size is how many bytes the fake received.
	Size int64
}

// Fake is what the suite needs from a fake target system.
type Fake interface {
	// Documents lists the documents complete in the fake.
	Documents() []Document
	// Steps names the protocol's steps in the order a delivery takes them,
	// as FailNext understands them, e.g. {"uploadInit", "upload"}.
	Steps() []string
	// FailNext makes the next request of step fail the way the real system
	// does when it is briefly unavailable (a 503, say).
	FailNext(step string)
	// ExpireCredentials makes the token or session the connector holds
	// invalid, as if it had expired.
	ExpireCredentials()
	// LoseAnswer makes the next request of step be carried out, then
	// lose its answer (the connection closes): the phase "after" of a
	// fault.
	LoseAnswer(step string)
	// RefuseLookup makes the next lookup the connector can make (a
	// search, a read, a probe) fail; a no-op for a system without one.
	RefuseLookup()
	// RefuseCredentials makes the fake refuse every credential for d,
	// renewals included, as after a rotated secret.
	RefuseCredentials(d time.Duration)
	// Creations counts the documents the fake created (or files it
	// bound), repeats included: a second document made by a repeated
	// step counts, even when Documents shows one.
	Creations() int
}

// Versioned is what the documents suite (targetstest.RunVersions) needs
// from a fake whose system keeps versions of a document (issue 21).
type Versioned interface {
	Fake
	// DocumentVersions maps each remote document the fake holds (by the
	// id the connector reports as Result.RemoteID) to the SHA-256 of its
	// versions, oldest first. A deleted document is absent.
	DocumentVersions() map[string][]string
	// VersionSteps names the steps of delivering a version after the
	// first, in order, as LoseAnswer and FailNext understand them.
	VersionSteps() []string
	// DeleteSteps names the steps of deleting a document; none when the
	// system has no delete.
	DeleteSteps() []string
}
