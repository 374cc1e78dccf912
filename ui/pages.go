package ui

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/ui/sessions"
)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Error   string
	Flash   string
	CSRF    string
	Refresh int // milliseconds between live refreshes; 0 for none
	// User is who the session's key speaks for; CanBulk whether its role
	// may re-queue many jobs at once; CanProbe whether it may ask for a
	// paused target to be probed (operators and admins: targets are shared
	// by every tenant).
	User     apitypes.Identity
	CanBulk  bool
	CanProbe bool
	Data     any
}

// render writes a page: the whole document, or only its live part when
// the script asks for it.
func (u *UI) render(w http.ResponseWriter, r *http.Request, code int, name string, q *request, p page) {
	t := u.pages[name]
	if q != nil {
		who := q.session.who
		p.CSRF = q.session.csrf
		p.User = apitypes.Identity{ID: who.ID, Name: who.Name, Tenant: who.Tenant, Role: string(who.Role), ExpiresAt: who.ExpiresAt}
		p.CanBulk = who.Role != "uploader"
		p.CanProbe = who.Role != "uploader"
	}
	if p.Refresh == 0 && q != nil && name != "error" {
		p.Refresh = int(u.cfg.Refresh / time.Millisecond)
	}
	if p.Flash == "" {
		p.Flash = r.URL.Query().Get("flash")
	}
	block := "layout"
	if isLive(r) {
		block = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, p); err != nil {
		u.log.Error("dashboard: template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// home is the login form without a session, the overview with one.
func (u *UI) home(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(sessionCookie); err == nil {
		// withSession reads the session again: a home page is one read
		// more, every other page one.
		if _, _, err := u.readSession(r); !errors.Is(err, sessions.ErrNotFound) {
			u.withSession(u.overview)(w, r)
			return
		}
	}
	if isLive(r) {
		w.Header().Set("X-Ferry-Login", "1")
		http.Error(w, "log in again", http.StatusUnauthorized)
		return
	}
	u.loginForm(w, r, http.StatusOK, "")
}

type loginData struct {
	Next string
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request, code int, msg string) {
	// Login CSRF: the form carries a token that must match a cookie set
	// with it (double submit), so no other site can log a browser in.
	tok := sessions.RandomToken()
	setCookie(w, r, loginCookie, tok, 600)
	u.render(w, r, code, "login", nil, page{Title: "Log in", Error: msg, CSRF: tok,
		Data: loginData{Next: safeNext(r.FormValue("next"))}})
}

// safeNext keeps a post-login destination only if it is a dashboard page.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/ui/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/ui/"
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !sameToken(r.PostFormValue("csrf"), c.Value) {
		u.loginForm(w, r, http.StatusForbidden, "The form expired: try again.")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if key == "" {
		u.loginForm(w, r, http.StatusBadRequest, "Enter an API key.")
		return
	}
	if wait := u.logins.allow(r.RemoteAddr, key, time.Now()); wait > 0 {
		w.Header().Set("Retry-After", itoa(int(wait/time.Second)+1))
		u.loginForm(w, r, http.StatusTooManyRequests, "Too many logins: wait a minute and try again.")
		return
	}
	who, ok := u.checkKey(w, r, key)
	if !ok {
		return
	}
	tok, err := u.sessions.Create(r.Context(), who.ID)
	if err != nil {
		if errors.Is(err, apikeys.ErrInvalid) {
			u.loginForm(w, r, http.StatusUnauthorized, "This key is not valid (or was revoked, or expired).")
			return
		}
		u.log.Error("dashboard: create session", "err", err)
		u.loginForm(w, r, http.StatusServiceUnavailable, "The session could not be saved; try again.")
		return
	}
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, tok, int(u.sessions.TTL()/time.Second))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// checkKey asks the API whose key is (GET /v1/whoami): the API decides
// whether it is good. It answers the login form itself when not.
func (u *UI) checkKey(w http.ResponseWriter, r *http.Request, key string) (apitypes.Identity, bool) {
	var who apitypes.Identity
	err := u.getJSON(withRemoteAddr(r.Context(), r.RemoteAddr), key, "/v1/whoami", &who)
	var ce *client.Error
	switch {
	case err == nil:
		return who, true
	case errors.As(err, &ce) && ce.StatusCode == http.StatusUnauthorized:
		u.loginForm(w, r, http.StatusUnauthorized, "This key is not valid (or was revoked, or expired).")
	case errors.As(err, &ce) && ce.StatusCode < 500:
		u.loginForm(w, r, ce.StatusCode, ce.Message)
	default:
		u.log.Error("dashboard: login check failed", "err", err)
		u.loginForm(w, r, http.StatusBadGateway, "The API could not check the key; try again.")
	}
	return who, false
}

func (u *UI) logout(w http.ResponseWriter, q *request) {
	if err := u.sessions.Delete(q.r.Context(), q.token); err != nil {
		u.log.Error("dashboard: logout", "err", err)
		http.Error(w, "the session could not be ended; try again", http.StatusServiceUnavailable)
		return
	}
	setCookie(w, q.r, sessionCookie, "", -1)
	http.Redirect(w, q.r, "/ui/", http.StatusSeeOther)
}

// targetRow is a target on the overview: as GET /v1/targets lists it
// (its state, since when and why included), with its last hour.
type targetRow struct {
	apitypes.Target
	Activity apitypes.TargetActivity
}

type overviewData struct {
	Targets  []targetRow
	Active   []apitypes.BatchSummary
	Finished []apitypes.BatchSummary
	More     bool
}

// overviewBatches is how many batches the overview reads.
const overviewBatches = 50

func (u *UI) overview(w http.ResponseWriter, q *request) {
	ctx := q.ctx()
	// The three reads are independent: they run at once, so the page
	// costs the slowest of them, not their sum.
	var ts []apitypes.Target
	var act apitypes.Activity
	var bp apitypes.BatchPage
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { ts, errs[0] = q.api.Targets(ctx) })
	wg.Go(func() { act, errs[1] = q.api.Activity(ctx) })
	wg.Go(func() { bp, errs[2] = q.api.Batches(ctx, "", overviewBatches) })
	wg.Wait()
	if err := cmp.Or(errs[0], errs[1], errs[2]); err != nil {
		u.apiError(w, q, err)
		return
	}
	byTarget := map[string]apitypes.TargetActivity{}
	for _, a := range act.Targets {
		byTarget[a.Target] = a
	}
	var d overviewData
	for _, t := range ts {
		t.State = cmp.Or(t.State, "ok")
		row := targetRow{Target: t, Activity: byTarget[t.Name]}
		if row.Activity.PerMinute == nil {
			row.Activity.PerMinute = make([]int64, act.WindowSeconds/60)
		}
		d.Targets = append(d.Targets, row)
	}
	for _, b := range bp.Batches {
		if b.Done() {
			d.Finished = append(d.Finished, b)
		} else {
			d.Active = append(d.Active, b)
		}
	}
	d.More = bp.NextCursor != ""
	u.render(w, q.r, http.StatusOK, "overview", q, page{Title: "Overview", Nav: "overview", Data: d})
}

// resumeTarget asks a paused target to be probed now (POST
// /v1/targets/{name}/resume): it resumes by itself if the probe succeeds.
func (u *UI) resumeTarget(w http.ResponseWriter, q *request) {
	name := q.r.PathValue("name")
	res, err := q.api.ResumeTarget(q.ctx(), name)
	if err != nil {
		u.actionError(w, q, err)
		return
	}
	msg := fmt.Sprintf("Target %s is %s: nothing to resume.", name, stateLabel(res.Target.State))
	if res.ProbeRequested {
		msg = fmt.Sprintf("Target %s will be probed now; it resumes by itself if the probe succeeds.", name)
	}
	u.done(w, q, safeNext(q.r.PostFormValue("back")), msg)
}

type batchData struct {
	Summary apitypes.BatchSummary
	// Waiting is the batch's target when it is paused or its circuit
	// open while jobs wait: the page says so.
	Waiting    *apitypes.Target
	Statuses   []apitypes.Status
	Groups     []apitypes.FailureGroup
	Throughput []apitypes.ThroughputPoint
	Failed     int64
}

func (u *UI) batchPage(w http.ResponseWriter, q *request) {
	ctx, name := q.ctx(), q.r.PathValue("name")
	sum, err := q.api.Batch(ctx, name)
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	d := batchData{Summary: sum, Statuses: apitypes.Statuses, Failed: sum.ByStatus[apitypes.StatusFailed].Files}
	if d.Groups, err = q.api.FailureGroups(ctx, name); err != nil {
		u.apiError(w, q, err)
		return
	}
	if d.Throughput, err = q.api.Throughput(ctx, name); err != nil {
		u.apiError(w, q, err)
		return
	}
	if !sum.Done() && sum.Target != "" {
		ts, err := q.api.Targets(ctx)
		if err != nil {
			u.apiError(w, q, err)
			return
		}
		for _, t := range ts {
			if t.Name == sum.Target && t.State != "" && t.State != "ok" {
				d.Waiting = &t
			}
		}
	}
	u.render(w, q.r, http.StatusOK, "batch", q, page{Title: "Batch " + name, Nav: "batch", Data: d})
}

// batchReport streams the batch's CSV report through.
func (u *UI) batchReport(w http.ResponseWriter, q *request) {
	name := q.r.PathValue("name")
	body, err := q.api.Report(q.ctx(), name, "csv", "")
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+reportName(name)+`"`)
	if _, err := io.Copy(w, body); err != nil && q.r.Context().Err() == nil {
		u.log.Warn("dashboard: report cut short", "batch", name, "err", err)
		panic(http.ErrAbortHandler) // a broken transfer, not a short report
	}
}

// reportName is the file name of a batch's report: the batch name with
// what a header or a file system would mind replaced.
func reportName(batch string) string {
	var b strings.Builder
	for _, r := range batch {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`"\/:*?<>|;`, r) || r > 0x7e {
			r = '_'
		}
		b.WriteRune(r)
	}
	return "report-" + b.String() + ".csv"
}

func (u *UI) retryBatch(w http.ResponseWriter, q *request) {
	name := q.r.PathValue("name")
	var n int
	var err error
	if g, ok := q.r.PostForm["group"]; ok {
		n, err = q.api.RetryBatchGroup(q.ctx(), name, g[0])
	} else {
		n, err = q.api.RetryBatch(q.ctx(), name, "")
	}
	if err != nil {
		u.actionError(w, q, err)
		return
	}
	u.done(w, q, "/ui/batches/"+url.PathEscape(name), fmt.Sprintf("%d failed jobs re-queued.", n))
}

// done answers an action: the message for the script, or a redirect back
// with the message without it.
func (u *UI) done(w http.ResponseWriter, q *request, back, msg string) {
	if isLive(q.r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, msg)
		return
	}
	http.Redirect(w, q.r, back+"?flash="+url.QueryEscape(msg), http.StatusSeeOther)
}

func (u *UI) actionError(w http.ResponseWriter, q *request, err error) {
	var ce *client.Error
	if isLive(q.r) && errors.As(err, &ce) && ce.StatusCode != http.StatusUnauthorized {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(ce.StatusCode)
		_, _ = io.WriteString(w, ce.Message)
		return
	}
	u.apiError(w, q, err)
}

type jobsData struct {
	Filter   client.JobFilter
	Statuses []apitypes.Status
	Targets  []string
	Jobs     []apitypes.Job
	Next     string
	First    string
	Paged    bool
}

// jobsPageSize is the jobs list's page.
const jobsPageSize = 50

func (u *UI) jobsPage(w http.ResponseWriter, q *request) {
	v := q.r.URL.Query()
	f := client.JobFilter{Status: apitypes.Status(strings.ToUpper(v.Get("status"))), Target: v.Get("target"),
		Batch: v.Get("batch"), FilenameContains: v.Get("filename"), Cursor: v.Get("cursor"), Limit: jobsPageSize,
		Uncertain: v.Get("uncertain") == "true"}
	if !f.Status.Valid() {
		f.Status = ""
	}
	list, next, err := q.api.Jobs(q.ctx(), f)
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	ts, err := q.api.Targets(q.ctx())
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	d := jobsData{Filter: f, Statuses: apitypes.Statuses, Jobs: list, Paged: f.Cursor != ""}
	for _, t := range ts {
		d.Targets = append(d.Targets, t.Name)
	}
	if f.Target != "" && !slices.Contains(d.Targets, f.Target) {
		d.Targets = append(d.Targets, f.Target)
	}
	base := url.Values{}
	for k, val := range map[string]string{"status": string(f.Status), "target": f.Target, "batch": f.Batch, "filename": f.FilenameContains} {
		if val != "" {
			base.Set(k, val)
		}
	}
	if f.Uncertain {
		base.Set("uncertain", "true")
	}
	d.First = "/ui/jobs?" + base.Encode()
	if next != "" {
		base.Set("cursor", next)
		d.Next = "/ui/jobs?" + base.Encode()
	}
	u.render(w, q.r, http.StatusOK, "jobs", q, page{Title: "Jobs", Nav: "jobs", Data: d})
}

type jobData struct {
	Job        apitypes.Job
	Attempts   []apitypes.Attempt
	Checkpoint [][2]string
}

func (u *UI) jobPage(w http.ResponseWriter, q *request) {
	id := q.r.PathValue("id")
	job, err := q.api.Job(q.ctx(), id)
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	as, err := q.api.Attempts(q.ctx(), id)
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	d := jobData{Job: job, Attempts: as}
	for k, v := range job.Checkpoint {
		d.Checkpoint = append(d.Checkpoint, [2]string{k, v})
	}
	slices.SortFunc(d.Checkpoint, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	u.render(w, q.r, http.StatusOK, "job", q, page{Title: "Job " + job.Filename, Nav: "jobs", Data: d})
}

func (u *UI) jobAction(w http.ResponseWriter, q *request) {
	id := q.r.PathValue("id")
	var job apitypes.Job
	var err error
	verb := "re-queued"
	if strings.HasSuffix(q.r.URL.Path, "/cancel") {
		job, err = q.api.CancelJob(q.ctx(), id)
		verb = "canceled"
	} else {
		job, err = q.api.RetryJob(q.ctx(), id)
	}
	if err != nil {
		u.actionError(w, q, err)
		return
	}
	u.done(w, q, "/ui/jobs/"+url.PathEscape(id), fmt.Sprintf("Job %s (%s).", verb, job.Status))
}

// getJSON reads an API route the client package has no method for, with
// key, into out. Error answers are *client.Error, as the client's.
func (u *UI) getJSON(ctx context.Context, key, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://ferry.in-process"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := u.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e apitypes.Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
			e.Error.Message = http.StatusText(resp.StatusCode)
		}
		return &client.Error{StatusCode: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
