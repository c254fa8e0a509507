package dashboard

import (
	"regexp"
)

// reasonCode is a score reason as a code plus parameters, so the page can
// translate it ("score.concurrent" {n: 16, max: 5}). Text no pattern
// recognises (older or future reasons) keeps its code empty and the page
// shows Text as it is.
type reasonCode struct {
	Code   string            `json:"code"`
	Params map[string]string `json:"params,omitempty"`
	Text   string            `json:"text"`
}

// reasonPatterns recognise the reasons sessionsvc/enrich/score writes
// (score.go, the deduct calls); the named groups become parameters.
var reasonPatterns = []struct {
	code string
	re   *regexp.Regexp
}{
	{"tor", regexp.MustCompile(`^Tor exit node$`)},
	{"threat", regexp.MustCompile(`^known threat ip$`)},
	{"vpn", regexp.MustCompile(`^VPN network$`)},
	{"proxy", regexp.MustCompile(`^proxy network$`)},
	{"datacenter", regexp.MustCompile(`^hosting/datacenter network \(anonymous\)$`)},
	{"newcountry", regexp.MustCompile(`^new country (?P<country>[A-Za-z]{2}) \(not in the last (?P<n>\d+) sessions\)$`)},
	{"newdevice", regexp.MustCompile(`^new device (?P<device>.{1,120})$`)},
	{"travel", regexp.MustCompile(`^impossible travel: (?P<km>\d+) km from (?P<place>.{1,200}) in (?P<time>[0-9hms.]+|no time)$`)},
	{"concurrent", regexp.MustCompile(`^(?P<n>\d+) concurrent active sessions \(more than (?P<max>\d+)\)$`)},
}

func reasonCodeOf(s string) reasonCode {
	for _, p := range reasonPatterns {
		m := p.re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		rc := reasonCode{Code: p.code, Text: s}
		for i, name := range p.re.SubexpNames() {
			if name != "" {
				if rc.Params == nil {
					rc.Params = map[string]string{}
				}
				rc.Params[name] = m[i]
			}
		}
		return rc
	}
	return reasonCode{Text: s}
}

func reasonCodes(list []string) []reasonCode {
	out := make([]reasonCode, 0, len(list))
	for _, s := range list {
		out = append(out, reasonCodeOf(s))
	}
	return out
}
