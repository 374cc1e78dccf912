package source

import "testing"

func TestIsTemporary(t *testing.T) {
	for name, want := range map[string]bool{
		"~$report.docx": true, ".~lock.sheet.ods#": true, "a.tmp": true, "movie.part": true, "x.crdownload": true,
		".notes.txt.swp": true, ".DS_Store": true, "Thumbs.db": true,
		"report.docx": false, ".~lock.sheet.ods": false, "tmp": false, ".tmp": true, "a.tmpl": false, "part.pdf": false,
		"thumbs.db.pdf": false, "~report.docx": false,
	} {
		if got := IsTemporary(name); got != want {
			t.Errorf("IsTemporary(%q) = %v, want %v", name, got, want)
		}
	}
}
