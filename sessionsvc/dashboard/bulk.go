package dashboard

import (
	"net/http"
	"slices"

	"github.com/meshsession/meshsession/sessionsvc/server"
)

// maxBulk bounds one bulk request (a table page holds at most 100 rows).
const maxBulk = 200

type bulkRequest struct {
	Action     string   `json:"action"` // terminate (sessions) or block (users)
	SessionIDs []string `json:"sessionIds"`
	UserIDs    []string `json:"userIds"`
}

type bulkResult struct {
	ID     string `json:"id"`
	Status int    `json:"status"`
	OK     bool   `json:"ok"`
}

// bulk terminates the selected sessions or blocks the selected users, one
// admin API call each, so every one is validated, logged and audited as a
// single action would be. It answers each item's outcome.
func (d *Dashboard) bulk(w http.ResponseWriter, r *http.Request, s *session) {
	var req bulkRequest
	if !decodeBody(w, r, &req, `send {"action": "terminate", "sessionIds": [...]} or {"action": "block", "userIds": [...]}`) {
		return
	}
	var ids []string
	switch req.Action {
	case "terminate":
		ids = req.SessionIDs
	case "block":
		ids = req.UserIDs
	default:
		server.WriteError(w, http.StatusBadRequest, "action must be terminate or block", nil)
		return
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 || len(ids) > maxBulk {
		server.WriteError(w, http.StatusBadRequest, "select between 1 and 200 items", nil)
		return
	}
	out := make([]bulkResult, 0, len(ids))
	done := 0
	for _, id := range ids {
		if id == "" || len(id) > 256 {
			out = append(out, bulkResult{ID: id, Status: http.StatusBadRequest})
			continue
		}
		var rec *recorder
		var err error
		if req.Action == "terminate" {
			rec, err = d.callAPI(r, s, http.MethodPost, "/sessions/"+seg(id)+"/terminate", nil, nil)
		} else {
			rec, err = d.callAPI(r, s, http.MethodPost, "/user/"+seg(id)+"/toggle-block", nil, []byte(`{"blocked":true}`))
		}
		if err != nil {
			server.WriteError(w, http.StatusInternalServerError, err.Error(), nil)
			return
		}
		if rec.status == http.StatusUnauthorized {
			relay(w, rec) // the token was revoked mid-way
			return
		}
		ok := rec.status < 300
		if ok {
			done++
		}
		out = append(out, bulkResult{ID: id, Status: rec.status, OK: ok})
	}
	d.log.Info("dashboard: bulk action", "admin", s.Name, "action", req.Action, "items", len(ids), "done", done)
	writeJSON(w, http.StatusOK, map[string]any{"done": done, "results": out})
}
