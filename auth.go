package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// An auth knows the tokens that may change things. With no token
// configured it is off and every caller may do everything; once any is
// configured, pouring, deleting and subscribing need one. Reading stays
// public.
type auth struct {
	tokens map[[sha256.Size]byte]caller // by the token's hash, so that no token is kept or compared
}

// A caller is who a request comes from.
type caller struct {
	admin bool  // holds ADMIN_TOKEN, or auth is off
	tap   int64 // the tap whose token it holds, or 0
}

// loadAuth reads the token settings; its errors name the setting, never a token.
func loadAuth(getenv func(string) string) (*auth, error) {
	a := &auth{tokens: make(map[[sha256.Size]byte]caller)}
	spec, source := getenv("TAP_TOKENS"), "TAP_TOKENS"
	if file := getenv("TAP_TOKENS_FILE"); file != "" {
		if spec != "" {
			return nil, errors.New("TAP_TOKENS and TAP_TOKENS_FILE are both set: set one of them")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("TAP_TOKENS_FILE: %w", err)
		}
		spec, source = string(b), "TAP_TOKENS_FILE "+file
	}
	// Entries are tapId:token, separated by commas or lines; blank lines
	// and lines starting with # are skipped.
	taps := make(map[int64]bool)
	for n, entry := range strings.Split(strings.ReplaceAll(spec, ",", "\n"), "\n") {
		if entry = strings.TrimSpace(entry); entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		id, token, _ := strings.Cut(entry, ":")
		tap, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
		h := sha256.Sum256([]byte(strings.TrimSpace(token)))
		switch {
		case err != nil || tap < 1: // the entry is not shown: it may be a token without its tap id
			return nil, fmt.Errorf("%s entry %d does not start with a tap id: write tapId:token, with a tap id from 1", source, n+1)
		case strings.TrimSpace(token) == "":
			return nil, fmt.Errorf("%s entry %d: tap %d has an empty token: write tapId:token", source, n+1, tap)
		case taps[tap]:
			return nil, fmt.Errorf("%s: tap %d is given twice: give each tap one token", source, tap)
		case a.tokens[h].tap != 0:
			return nil, fmt.Errorf("%s: taps %d and %d have the same token: give each tap its own", source, a.tokens[h].tap, tap)
		}
		taps[tap], a.tokens[h] = true, caller{tap: tap}
	}
	if admin := strings.TrimSpace(getenv("ADMIN_TOKEN")); admin != "" {
		h := sha256.Sum256([]byte(admin))
		if other, ok := a.tokens[h]; ok {
			return nil, fmt.Errorf("ADMIN_TOKEN is also the token of tap %d in %s: give the admin a token of its own", other.tap, source)
		}
		a.tokens[h] = caller{admin: true}
	}
	return a, nil
}

// logMode says at start-up how the server is protected.
func (a *auth) logMode(log *slog.Logger) {
	switch taps := len(a.tokens); {
	case taps == 0:
		log.Warn("authentication is off: anyone who can reach the server may pour, delete and subscribe; set TAP_TOKENS and ADMIN_TOKEN to protect it")
	case !slices.Contains(slices.Collect(maps.Values(a.tokens)), caller{admin: true}):
		log.Warn("ADMIN_TOKEN is not set: nobody can delete pours", "taps", taps)
	default:
		log.Info("authentication is on", "taps", taps-1)
	}
}

// caller returns who sent r: a bearer token in the Authorization header
// or, where allowQuery (browsers cannot set headers on a WebSocket), the
// token query parameter. It is a 401 when auth is on and the token is
// missing or unknown.
func (a *auth) caller(w http.ResponseWriter, r *http.Request, allowQuery bool) (caller, error) {
	if len(a.tokens) == 0 {
		return caller{admin: true}, nil
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		token = ""
	}
	if token = strings.TrimSpace(token); token == "" && allowQuery {
		token = r.URL.Query().Get("token")
	}
	who, known := a.tokens[sha256.Sum256([]byte(token))]
	switch {
	case token == "" && allowQuery:
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair"`)
		return caller{}, errorf(http.StatusUnauthorized, "this needs a token: send Authorization: Bearer <token> or ?token=<token>")
	case token == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair"`)
		return caller{}, errorf(http.StatusUnauthorized, "this needs a token: send Authorization: Bearer <token>")
	case !known:
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair", error="invalid_token"`)
		return caller{}, errorf(http.StatusUnauthorized, "the token is not a tap's or the admin's: check the token")
	}
	return who, nil
}

// mayPour is nil when who may pour for tap, or a 403.
func (who caller) mayPour(tap int64) error {
	if who.admin || who.tap == tap {
		return nil
	}
	return errorf(http.StatusForbidden, "tap %d's token may pour only for tap %d, not for tap %d", who.tap, who.tap, tap)
}

// mayDelete is nil when who may delete pours, or a 403.
func (who caller) mayDelete() error {
	if who.admin {
		return nil
	}
	return errorf(http.StatusForbidden, "only the admin token may delete pours, not tap %d's", who.tap)
}

// checkOrigin refuses a browser on another web origin, unless patterns
// allow it, to subscribe or to change anything: a page elsewhere must not
// pour or delete in the name of whoever views it. Requests without an
// Origin header (curl, taps, other programs) pass. Patterns are matched as
// by path.Match against the origin's host, or against scheme://host when
// they contain "://".
func checkOrigin(patterns []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path != "/sockets/beers"
		origin := r.Header.Get("Origin")
		if safe || origin == "" || originAllowed(origin, r.Host, patterns) {
			next.ServeHTTP(w, r)
			return
		}
		writeError(w, errorf(http.StatusForbidden,
			"requests from the web origin %q are refused: the server's ALLOWED_ORIGINS setting must name it", origin))
	})
}

func originAllowed(origin, host string, patterns []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return strings.EqualFold(u.Host, host)
}
