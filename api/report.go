package api

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
)

// Streamed answers: a batch's report and its keys, row by row as the
// store reads them, each write under a deadline of its own.

// batchReport streams one row per job of the batch as CSV or JSON. Rows
// are written as they are read: a report of a million files never sits in
// memory. A failure midway aborts the response, so a client never takes a
// truncated report for a whole one.
func (s *Server) batchReport(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		writeError(w, http.StatusBadRequest, "bad_request", "format must be csv or json")
		return
	}
	status := jobs.Status(q.Get("status"))
	if status != "" && !status.Valid() {
		writeError(w, http.StatusBadRequest, "bad_request", "unknown status "+strconv.Quote(string(status)))
		return
	}
	if _, err := s.jobs.BatchSummary(r.Context(), tenant, name); err != nil {
		s.fail(w, r, err)
		return
	}
	dw := newDeadlineWriter(w, s.cfg.ReportWriteTimeout)
	defer dw.done()
	write, end := reportWriter(dw, format)
	dw.WriteHeader(http.StatusOK)
	err = s.jobs.Report(r.Context(), tenant, name, status, write)
	if err == nil {
		err = end()
	}
	if err != nil {
		s.abort(r, err)
	}
}

// reportWriter sets w's headers for a report in format (csv or json) and
// returns how to write a row and how to end the report.
func reportWriter(w http.ResponseWriter, format string) (write func(jobs.ReportRow) error, end func() error) {
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="report.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"path", "job_id", "status", "attempts", "remote_id", "sha256", "size", "last_error", "finished_at"})
		write = func(row jobs.ReportRow) error {
			finished := ""
			if row.FinishedAt != nil {
				finished = row.FinishedAt.UTC().Format(time.RFC3339)
			}
			return cw.Write([]string{csvSafe(row.Path), row.JobID, string(row.Status), strconv.Itoa(row.Attempts),
				csvSafe(row.RemoteID), row.SHA256, strconv.FormatInt(row.Size, 10), csvSafe(row.LastError), finished})
		}
		return write, func() error { cw.Flush(); return cw.Error() }
	}
	// A JSON array, one row per line.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	sep := "[\n"
	write = func(row jobs.ReportRow) error {
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		sep = ","
		return enc.Encode(wireReportRow(row))
	}
	end = func() error {
		if sep == "[\n" {
			_, err := io.WriteString(w, "[]\n")
			return err
		}
		_, err := io.WriteString(w, "]\n")
		return err
	}
	return write, end
}

// batchKeys streams the idempotency keys of the batch's jobs, one per
// line.
func (s *Server) batchKeys(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.jobs.BatchSummary(r.Context(), tenant, name); err != nil {
		s.fail(w, r, err)
		return
	}
	dw := newDeadlineWriter(w, s.cfg.ReportWriteTimeout)
	defer dw.done()
	w = dw
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	err = s.jobs.BatchKeys(r.Context(), tenant, name, func(k string) error {
		_, err := io.WriteString(w, k+"\n")
		return err
	})
	if err != nil {
		s.abort(r, err)
	}
}

// abort ends a response that has started: the client sees a broken
// transfer, not a short answer it could take for complete.
func (s *Server) abort(r *http.Request, err error) {
	if r.Context().Err() == nil {
		s.log.Error("streaming response failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// deadlineWriter gives every write of a streamed answer a deadline of its
// own: a reader that stops makes the write fail after timeout instead of
// blocking forever.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func newDeadlineWriter(w http.ResponseWriter, timeout time.Duration) *deadlineWriter {
	return &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.ResponseWriter.Write(p)
}

// done lifts the deadline, which would otherwise outlive the answer on a
// kept-alive connection.
func (d *deadlineWriter) done() { _ = d.rc.SetWriteDeadline(time.Time{}) }

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// csvSafe neutralises a cell a spreadsheet would run as a formula (OWASP
// "CSV injection"): one starting with = + - @, a tab or a carriage return
// gets a leading apostrophe, which spreadsheets show as text.
func csvSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}
