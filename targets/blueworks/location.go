package blueworks

import (
	"fmt"
	"strings"
)

// The per-job parameters, as param.<name> at upload.
const (
	// ParamLocation is where the file is attached: one of Locations.
	ParamLocation = "locationField"
	// ParamAncestorID is the ancestor item (a process blueprint, an
	// application, a decision diagram or a work instance).
	ParamAncestorID = "ancestorId"
	// ParamParentID is the parent item (a process, an application, a
	// decision, a work instance or a policy).
	ParamParentID = "parentId"
)

// location says which ids an attachment location needs, and what they
// mean there, following the FileUpload table of Blueworks Live.
type location struct {
	ancestor string // meaning of ancestorIdField, "" when not needed
	parent   string // meaning of parentIdField, "" when not needed
}

// locations are the values of locationField that Blueworks Live accepts.
var locations = map[string]location{
	"activity": {ancestor: "the process blueprint ID", parent: "the process ID"},
	"app":      {ancestor: "the process application ID", parent: "the application ID"},
	"decision": {ancestor: "the decision diagram ID", parent: "the decision ID"},
	"instance": {ancestor: "the work ID of an existing instance", parent: "the work ID of an existing instance"},
	"policy":   {parent: "the policy ID"},
	"post":     {},
}

// Locations lists the values param.locationField accepts.
var Locations = []string{"activity", "app", "decision", "instance", "policy", "post"}

// uploadFields checks params against the location table and returns the
// form fields of the upload. Ids a location does not use are sent empty:
// the API marks all three fields required, yet says those ids "do not need
// to be provided", so an empty field satisfies both readings.
func uploadFields(params map[string]string) (locationField, ancestorID, parentID string, err error) {
	name := strings.TrimSpace(params[ParamLocation])
	if name == "" {
		return "", "", "", fmt.Errorf("missing param.%s (one of %s)", ParamLocation, strings.Join(Locations, ", "))
	}
	loc, ok := locations[name]
	if !ok {
		return "", "", "", fmt.Errorf("param.%s %q is not one of %s", ParamLocation, name, strings.Join(Locations, ", "))
	}
	if loc.ancestor != "" {
		if ancestorID = strings.TrimSpace(params[ParamAncestorID]); ancestorID == "" {
			return "", "", "", fmt.Errorf("missing param.%s (%s, for %s=%s)", ParamAncestorID, loc.ancestor, ParamLocation, name)
		}
	}
	if loc.parent != "" {
		if parentID = strings.TrimSpace(params[ParamParentID]); parentID == "" {
			return "", "", "", fmt.Errorf("missing param.%s (%s, for %s=%s)", ParamParentID, loc.parent, ParamLocation, name)
		}
	}
	return name, ancestorID, parentID, nil
}
