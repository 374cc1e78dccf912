package push

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// uploadState is where the upload phase stands.
type uploadState struct {
	// Files is how many files the push covers; Done how many are through
	// (uploaded, already accepted, or failed); Skipped how many of those
	// were already accepted; Failed how many were not accepted.
	Files, Done, Skipped, Failed int64
	// Sent is how many bytes were sent; ToSend how many will be in all.
	Sent, ToSend int64
}

// deliveryState is where the batch's deliveries stand.
type deliveryState struct {
	Total, Final, Success, Failed, Canceled, Pending int64
	// Superseded are versions overtaken by a newer one before they
	// started (with Documents).
	Superseded     int64
	FilesPerSecond float64
	ETA            *time.Duration
}

// meter shows progress. It is used from one goroutine at a time.
type meter interface {
	upload(s uploadState)
	delivery(s deliveryState)
	// end finishes the line of the current phase.
	end()
}

// barMeter draws progress bars on a terminal: one line for the uploads,
// then one for the deliveries.
type barMeter struct {
	w        io.Writer
	up, down *progressbar.ProgressBar
	max      int64
	// upDone and downDone say the last state shown was complete: end
	// fills a complete bar, and leaves an interrupted one as it stands.
	upDone, downDone bool
}

func newBarMeter(w io.Writer) *barMeter { return &barMeter{w: w} }

func (m *barMeter) upload(s uploadState) {
	// The bar counts bytes to send, plus one so that a push of empty files
	// (or of files all accepted before) still has a bar to fill.
	if m.up == nil {
		m.max = s.ToSend + 1
		m.up = progressbar.NewOptions64(m.max,
			progressbar.OptionSetWriter(m.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(25),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(m.w) }),
		)
	}
	if s.ToSend+1 != m.max {
		m.max = s.ToSend + 1
		m.up.ChangeMax64(m.max)
	}
	m.up.Describe(uploadLine(s))
	_ = m.up.Set64(min(s.Sent, m.max-1))
	m.upDone = s.Done == s.Files
}

func (m *barMeter) delivery(s deliveryState) {
	if m.down == nil {
		endBar(m.up, m.upDone)
		m.up = nil
		// The rate and time left are the server's: the bar's own would
		// count the jobs delivered before it appeared as one burst.
		m.down = progressbar.NewOptions64(max(s.Total, 1),
			progressbar.OptionSetWriter(m.w),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(25),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(m.w) }),
		)
	}
	if s.Total > 0 && s.Total != m.down.GetMax64() {
		m.down.ChangeMax64(s.Total)
	}
	m.down.Describe("deliveries: " + deliveryLine(s))
	_ = m.down.Set64(s.Final)
	m.downDone = s.Pending == 0 && s.Final == s.Total
}

func (m *barMeter) end() {
	endBar(m.up, m.upDone)
	endBar(m.down, m.downDone)
	m.up, m.down = nil, nil
}

// endBar fills a complete bar, or leaves it as it stands, and ends its
// line.
func endBar(b *progressbar.ProgressBar, complete bool) {
	switch {
	case b == nil || b.IsFinished():
	case complete:
		_ = b.Finish()
	default:
		_ = b.Exit()
	}
}

// uploadLine is the upload progress in words.
func uploadLine(s uploadState) string {
	line := fmt.Sprintf("files %d/%d", s.Done, s.Files)
	if s.Skipped > 0 {
		line += fmt.Sprintf(" · %d already accepted", s.Skipped)
	}
	return line + fmt.Sprintf(" · %d failed", s.Failed)
}

// lineMeter prints a line every interval, for logs and pipes.
type lineMeter struct {
	w        io.Writer
	every    time.Duration
	start    time.Time
	last     time.Time
	lastSent int64
	rate     float64 // bytes per second, smoothed
	phase    string
	// lastUpload is the state of the last line printed.
	lastUpload   uploadState
	printed      bool
	lastDelivery string
	lastLine     time.Time
	final        func()
}

func newLineMeter(w io.Writer, every time.Duration) *lineMeter {
	now := time.Now()
	return &lineMeter{w: w, every: every, start: now, last: now, lastLine: now}
}

func (m *lineMeter) due() bool { return time.Since(m.lastLine) >= m.every }

func (m *lineMeter) upload(s uploadState) {
	m.phase = "upload"
	m.final = func() {
		if s != m.lastUpload || !m.printed { // unless the last line said it already
			m.printUpload(s)
		}
	}
	if m.due() {
		m.printUpload(s)
	}
}

func (m *lineMeter) printUpload(s uploadState) {
	now := time.Now()
	if dt := now.Sub(m.last).Seconds(); dt >= 0.5 {
		r := float64(s.Sent-m.lastSent) / dt
		if m.rate == 0 {
			m.rate = r
		} else {
			m.rate = 0.5*m.rate + 0.5*r
		}
		m.last, m.lastSent = now, s.Sent
	}
	m.lastUpload, m.printed, m.lastLine = s, true, now
	eta := "-"
	if left := s.ToSend - s.Sent; left > 0 && m.rate > 0 {
		eta = time.Duration(float64(left) / m.rate * float64(time.Second)).Round(time.Second).String()
	} else if left <= 0 {
		eta = "0s"
	}
	fmt.Fprintf(m.w, "[%s] upload: %s · %s of %s sent · %s/s · ETA %s\n",
		m.elapsed(), uploadLine(s), bytesText(s.Sent), bytesText(s.ToSend), bytesText(int64(m.rate)), eta)
}

func (m *lineMeter) delivery(s deliveryState) {
	if m.phase == "upload" {
		m.end()
	}
	m.phase = "delivery"
	m.final = func() {
		if deliveryLine(s) != m.lastDelivery {
			m.printDelivery(s)
		}
	}
	if m.due() {
		m.printDelivery(s)
	}
}

func (m *lineMeter) printDelivery(s deliveryState) {
	m.lastLine, m.lastDelivery = time.Now(), deliveryLine(s)
	fmt.Fprintf(m.w, "[%s] deliveries: %d/%d final · %s\n", m.elapsed(), s.Final, s.Total, deliveryLine(s))
}

// deliveryLine is the delivery progress in words.
func deliveryLine(s deliveryState) string {
	eta := "-"
	switch {
	case s.Pending == 0:
		eta = "0s"
	case s.ETA != nil:
		eta = s.ETA.Round(time.Second).String()
	}
	superseded := ""
	if s.Superseded > 0 {
		superseded = fmt.Sprintf(" · %d superseded", s.Superseded)
	}
	return fmt.Sprintf("%d ok%s · %d failed · %d pending · %.1f files/s · ETA %s",
		s.Success, superseded, s.Failed+s.Canceled, s.Pending, s.FilesPerSecond, eta)
}

func (m *lineMeter) elapsed() string { return time.Since(m.start).Round(time.Second).String() }

func (m *lineMeter) end() {
	if m.final != nil {
		m.final()
		m.final = nil
	}
}

// bytesText is n in binary units, as 1.5 MiB.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
