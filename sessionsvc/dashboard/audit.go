package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/meshsession/meshsession/sessionsvc/server"
)

// The audit trail and the lockouts come from the admin API (GET /audit,
// GET /lockouts, POST /lockouts/unlock); the dashboard forwards, so an
// unlock is audited under the signed-in token's name like any API call.

func (d *Dashboard) listAudit(w http.ResponseWriter, r *http.Request, s *session) {
	q := url.Values{}
	for _, k := range []string{"before", "limit"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	d.forward(w, r, s, http.MethodGet, "/audit", q, nil)
}

func (d *Dashboard) listLockouts(w http.ResponseWriter, r *http.Request, s *session) {
	d.forward(w, r, s, http.MethodGet, "/lockouts", nil, nil)
}

func (d *Dashboard) unlock(w http.ResponseWriter, r *http.Request, s *session) {
	d.forwardBody(w, r, s, http.MethodPost, "/lockouts/unlock", nil)
}

// Audit export limits.
const (
	auditPage      = 1000
	auditExportMax = 100_000
)

var auditCSVHeader = []string{"id", "at", "event", "subjectType", "subject", "actor", "ip", "detail"}

// exportAudit streams the audit trail, newest first, as CSV or JSON.
func (d *Dashboard) exportAudit(w http.ResponseWriter, r *http.Request, s *session) {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		server.WriteError(w, http.StatusBadRequest, "format must be csv or json", nil)
		return
	}
	page := func(before int64) ([]server.AuditView, *recorder, error) {
		q := url.Values{"limit": {strconv.Itoa(auditPage)}}
		if before > 0 {
			q.Set("before", strconv.FormatInt(before, 10))
		}
		rec, err := d.callAPI(r, s, http.MethodGet, "/audit", q, nil)
		if err != nil || rec.status != http.StatusOK {
			return nil, rec, err
		}
		var body struct {
			Data []server.AuditView `json:"data"`
		}
		if err := json.Unmarshal(rec.body.Bytes(), &body); err != nil {
			return nil, rec, err
		}
		return body.Data, rec, nil
	}
	rows, rec, err := page(0)
	if err != nil {
		server.WriteError(w, http.StatusInternalServerError, "reading the audit trail failed", nil)
		return
	}
	if rec.status != http.StatusOK {
		relay(w, rec)
		return
	}
	name := "audit-" + d.now().UTC().Format("20060102-150405") + "." + format
	x := startExport(w, name, format, auditCSVHeader)
	for len(rows) > 0 && x.n < auditExportMax {
		for _, e := range rows {
			x.add(e, func() []string { return auditCSVRow(e) })
		}
		if len(rows) < auditPage {
			break
		}
		if rows, _, err = page(rows[len(rows)-1].ID); err != nil {
			d.log.Warn("dashboard: audit export stopped early", "rows", x.n, "err", err)
			break
		}
	}
	x.end()
}

// auditCSVRow is e's CSV record (auditCSVHeader's columns).
func auditCSVRow(e server.AuditView) []string {
	var det struct {
		IP string `json:"ip"`
	}
	_ = json.Unmarshal(e.Detail, &det)
	row := []string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339), e.Event, e.SubjectType, e.Subject, e.Actor, det.IP, string(e.Detail)}
	for i := range row {
		row[i] = csvCell(row[i])
	}
	return row
}
