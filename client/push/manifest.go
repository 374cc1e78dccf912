package push

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// A manifest is a CSV file naming the files to push, one per line, with
// per-file parameters. Its header row names the columns:
//
//	path               the file; relative paths are relative to the manifest's folder (required)
//	filename           the name the target gets (default: the last element of path)
//	param.<name>       a parameter of that file; an empty cell leaves the batch's value
//
// The path, as written, is the file's path in the batch.
func readManifest(name string, filter Filter) (found, error) {
	f, err := os.Open(name)
	if err != nil {
		return found{}, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	return parseManifest(f, filepath.Dir(name), filter)
}

// parseManifest reads a manifest whose relative paths are under dir.
func parseManifest(r io.Reader, dir string, filter Filter) (found, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return found{}, errors.New("manifest: empty, want a header row naming the columns (path, filename, param.<name>)")
	}
	if err != nil {
		return found{}, fmt.Errorf("manifest: %w", err)
	}
	cols, err := manifestColumns(header)
	if err != nil {
		return found{}, err
	}
	w := &walker{filter: filter, seen: map[string]string{}}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return found{}, fmt.Errorf("manifest: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if err := w.manifestRow(rec, line, dir, filter, cols); err != nil {
			return found{}, err
		}
	}
	return w.out, nil
}

// manifestLayout is where a manifest's columns are.
type manifestLayout struct {
	path, filename int // filename is -1 without that column
	// params are the parameter each param.<name> column holds.
	params map[int]string
}

// manifestColumns reads the header row.
func manifestColumns(header []string) (manifestLayout, error) {
	col := map[string]int{}
	params := map[int]string{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			return manifestLayout{}, fmt.Errorf("manifest: column %q appears twice", h)
		}
		col[h] = i
		switch {
		case h == "path", h == "filename":
		case strings.HasPrefix(h, "param.") && len(h) > len("param."):
			params[i] = strings.TrimPrefix(h, "param.")
		default:
			return manifestLayout{}, fmt.Errorf("manifest: unknown column %q (want path, filename, param.<name>)", h)
		}
	}
	pathCol, ok := col["path"]
	if !ok {
		return manifestLayout{}, errors.New("manifest: no path column")
	}
	nameCol, hasName := col["filename"]
	if !hasName {
		nameCol = -1
	}
	return manifestLayout{path: pathCol, filename: nameCol, params: params}, nil
}

// manifestRow adds the file of one manifest row, or reports its problem.
func (w *walker) manifestRow(rec []string, line int, dir string, filter Filter, cols manifestLayout) error {
	raw := strings.TrimSpace(rec[cols.path])
	if raw == "" {
		return fmt.Errorf("manifest line %d: empty path", line)
	}
	rel := strings.TrimPrefix(path.Clean(filepath.ToSlash(raw)), "./")
	if !filter.File(rel) {
		return nil
	}
	local := filepath.FromSlash(raw)
	if !filepath.IsAbs(local) {
		local = filepath.Join(dir, local)
	}
	info, err := os.Stat(local)
	switch {
	case err != nil:
		w.problem(rel, ProblemUnreadable, err)
		return nil
	case !info.Mode().IsRegular():
		w.problem(rel, ProblemNotRegular, fmt.Errorf("%s", info.Mode().Type()))
		return nil
	}
	n := len(w.out.files)
	w.add(rel, local, info.Size())
	if len(w.out.files) == n {
		return nil // a duplicate, reported
	}
	file := &w.out.files[n]
	if cols.filename >= 0 && strings.TrimSpace(rec[cols.filename]) != "" {
		file.Filename = strings.TrimSpace(rec[cols.filename])
	}
	for i, p := range cols.params {
		if v := rec[i]; v != "" {
			if file.Params == nil {
				file.Params = map[string]string{}
			}
			file.Params[p] = v
		}
	}
	return nil
}
