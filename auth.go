package main

import (
	"crypto/sha256"
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

// An auth knows the tokens. With none configured it is off and every caller may do everything; once any is, pouring,
// deleting and subscribing need one. Reading stays public.
type auth struct {
	tokens map[[sha256.Size]byte]caller // by the token's hash, so that no token is kept or compared
}

// A caller is who a request comes from.
type caller struct {
	admin  bool   // holds ADMIN_TOKEN, or auth is off
	tap    int64  // the tap whose token it holds, or 0
	screen string // the screen whose token it holds, which may only watch, or ""
}

// loadAuth reads the token settings; its errors name the setting, never a token.
func loadAuth(getenv func(string) string) (*auth, error) {
	a := &auth{tokens: make(map[[sha256.Size]byte]caller)}
	taps, source, err := entries(getenv, "TAP_TOKENS")
	if err != nil {
		return nil, err
	}
	for n, e := range taps {
		tap, err := strconv.ParseInt(e[0], 10, 64)
		h := sha256.Sum256([]byte(e[1]))
		switch other := a.tokens[h]; {
		case err != nil || tap < 1: // the entry is not shown: it may be a token without its tap id
			return nil, fmt.Errorf("%s entry %d does not start with a tap id: write tapId:token, with a tap id from 1",
				source, n+1)
		case e[1] == "":
			return nil, fmt.Errorf("%s entry %d: tap %d has an empty token: write tapId:token", source, n+1, tap)
		case a.has(caller{tap: tap}):
			return nil, fmt.Errorf("%s: tap %d is given twice: give each tap one token", source, tap)
		case other.tap != 0:
			return nil, fmt.Errorf("%s: taps %d and %d have the same token: give each tap its own", source, other.tap, tap)
		}
		a.tokens[h] = caller{tap: tap}
	}
	if admin := strings.TrimSpace(getenv("ADMIN_TOKEN")); admin != "" {
		h := sha256.Sum256([]byte(admin))
		if other, ok := a.tokens[h]; ok {
			return nil, fmt.Errorf("ADMIN_TOKEN is also the token of tap %d in %s: give the admin a token of its own",
				other.tap, source)
		}
		a.tokens[h] = caller{admin: true}
	}
	screens, source, err := entries(getenv, "SCREEN_TOKENS")
	if err != nil {
		return nil, err
	}
	for n, e := range screens {
		h := sha256.Sum256([]byte(e[1]))
		_, taken := a.tokens[h]
		switch name := e[0]; {
		case name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "":
			return nil, fmt.Errorf("%s entry %d does not start with a name: write name:token, "+
				"with a name of letters, digits or -_.", source, n+1)
		case e[1] == "":
			return nil, fmt.Errorf("%s entry %d: screen %q has an empty token: write name:token", source, n+1, name)
		case a.has(caller{screen: name}):
			return nil, fmt.Errorf("%s: screen %q is given twice: give each screen one token", source, name)
		case taken:
			return nil, fmt.Errorf("%s: screen %q has the token of a tap, the admin or another screen: "+
				"give each its own", source, name)
		}
		a.tokens[h] = caller{screen: e[0]}
	}
	return a, nil
}

// has reports whether who holds a token.
func (a *auth) has(who caller) bool {
	return slices.Contains(slices.Collect(maps.Values(a.tokens)), who)
}

// entries returns the name:token entries of setting, or of the file that setting_FILE names, and which it read.
// Entries are separated by commas or lines; blank lines and lines starting with # are skipped.
func entries(getenv func(string) string, setting string) ([][2]string, string, error) {
	spec, source := getenv(setting), setting
	if file := getenv(setting + "_FILE"); file != "" {
		if spec != "" {
			return nil, "", fmt.Errorf("%s and %s_FILE are both set: set one of them", setting, setting)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("%s_FILE: %w", setting, err)
		}
		spec, source = string(b), setting+"_FILE "+file
	}
	var list [][2]string
	for entry := range strings.SplitSeq(strings.ReplaceAll(spec, ",", "\n"), "\n") {
		entry = strings.TrimSpace(entry)
		if entry != "" && !strings.HasPrefix(entry, "#") {
			name, token, _ := strings.Cut(entry, ":")
			list = append(list, [2]string{strings.TrimSpace(name), strings.TrimSpace(token)})
		}
	}
	return list, source, nil
}

// logMode says at start-up how the server is protected.
func (a *auth) logMode(log *slog.Logger, tls bool) {
	switch {
	case len(a.tokens) == 0:
		log.Warn("authentication is off: anyone who can reach the server may pour, delete, change kegs and subscribe; " +
			"set TAP_TOKENS and ADMIN_TOKEN to protect it")
		return
	case !a.has(caller{admin: true}):
		log.Warn("ADMIN_TOKEN is not set: nobody can delete pours or change kegs", "tokens", len(a.tokens))
	default:
		log.Info("authentication is on", "tokens", len(a.tokens))
	}
	if !tls {
		log.Warn("tokens cross the network in clear text: set TLS_CERT_FILE and TLS_KEY_FILE to encrypt them")
	}
}

// bearer is the token in r's header Authorization: Bearer <token>, or "".
func bearer(r *http.Request) string {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// caller returns who sent r: a bearer token in the Authorization header or, for a WebSocket (browsers cannot set
// headers on one), the subprotocol token.<token> or the token query parameter. Without a known token it is a 401,
// unless auth is off.
func (a *auth) caller(w http.ResponseWriter, r *http.Request, ws bool) (caller, error) {
	if len(a.tokens) == 0 {
		return caller{admin: true}, nil
	}
	token := bearer(r)
	for p := range strings.SplitSeq(strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ","), ",") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(p), "token."); ok && ws && token == "" {
			token = strings.TrimSpace(t)
		}
	}
	if ws && token == "" {
		token = r.URL.Query().Get("token")
	}
	if who, ok := a.tokens[sha256.Sum256([]byte(token))]; ok {
		return who, nil
	}
	if token != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair", error="invalid_token"`)
		return caller{}, errorf(http.StatusUnauthorized,
			"the token is not a tap's, a screen's or the admin's: check the token")
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="altair"`)
	if ws {
		return caller{}, errorf(http.StatusUnauthorized,
			"this needs a token: send Authorization: Bearer <token>, the subprotocol token.<token> or ?token=<token>")
	}
	return caller{}, errorf(http.StatusUnauthorized, "this needs a token: send Authorization: Bearer <token>")
}

// mayPour is nil when who may pour for tap, or a 403.
func (who caller) mayPour(tap int64) error {
	switch {
	case who.admin || who.tap == tap:
		return nil
	case who.screen != "":
		return errorf(http.StatusForbidden, "screen %q's token may only watch: pour with tap %d's token", who.screen, tap)
	}
	return errorf(http.StatusForbidden, "tap %d's token may pour only for tap %d, not for tap %d", who.tap, who.tap, tap)
}

// admin is nil when r comes from the admin, who alone may do action (delete pours, change kegs), or the 401 or 403 to
// answer; a screen is told to do instead with the admin token.
func (a *auth) admin(w http.ResponseWriter, r *http.Request, instead, action string) error {
	who, err := a.caller(w, r, false)
	switch {
	case err != nil || who.admin:
		return err
	case who.screen != "":
		return errorf(http.StatusForbidden, "screen %q's token may only watch: %s with the admin token", who.screen, instead)
	}
	return errorf(http.StatusForbidden, "only the admin token may %s, not tap %d's", action, who.tap)
}

// checkOrigin refuses a browser on another web origin, unless patterns allow it, to subscribe or to change anything:
// a page elsewhere must not pour or delete in the name of whoever views it. Requests without an Origin header (curl,
// taps, other programs) pass. Patterns match the origin's host as path.Match does, or its scheme://host when they
// contain "://".
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
