package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// An auth knows the tokens that may change things. With no token
// configured it is off and every caller may do everything; once any token
// is configured, pouring, deleting and subscribing need one. Reading stays
// public.
type auth struct {
	admin    [sha256.Size]byte // the hash of ADMIN_TOKEN
	hasAdmin bool
	taps     []tapToken // one per tap
}

// A tapToken is the hash of one tap's token, which may pour only for it.
type tapToken struct {
	tap  int64
	hash [sha256.Size]byte
}

// A caller is who a request comes from.
type caller struct {
	admin bool  // holds ADMIN_TOKEN, or auth is off
	tap   int64 // the tap whose token it holds, or 0
}

func (a *auth) on() bool { return a.hasAdmin || len(a.taps) > 0 }

// logMode says at start-up how the server is protected.
func (a *auth) logMode(log *slog.Logger) {
	switch {
	case !a.on():
		log.Warn("authentication is off: anyone who can reach the server may pour, delete and subscribe; set TAP_TOKENS and ADMIN_TOKEN to protect it")
	case !a.hasAdmin:
		log.Warn("ADMIN_TOKEN is not set: nobody can delete pours", "taps", len(a.taps))
	default:
		log.Info("authentication is on", "taps", len(a.taps))
	}
}

// loadAuth reads ADMIN_TOKEN and TAP_TOKENS or TAP_TOKENS_FILE. Its errors
// name the setting and never the tokens.
func loadAuth(getenv func(string) string) (*auth, error) {
	a := &auth{}
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
	if err := a.addTaps(spec, source); err != nil {
		return nil, err
	}
	if admin := strings.TrimSpace(getenv("ADMIN_TOKEN")); admin != "" {
		a.admin, a.hasAdmin = sha256.Sum256([]byte(admin)), true
		for _, t := range a.taps {
			if t.hash == a.admin {
				return nil, fmt.Errorf("ADMIN_TOKEN is also the token of tap %d in %s: give the admin a token of its own", t.tap, source)
			}
		}
	}
	return a, nil
}

// addTaps reads tapId:token entries, separated by commas or lines; blank
// lines and lines starting with # are skipped.
func (a *auth) addTaps(spec, source string) error {
	seen := make(map[[sha256.Size]byte]int64)
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(spec, ",", "\n")))
	for n := 1; sc.Scan(); n++ {
		entry := strings.TrimSpace(sc.Text())
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		id, token, _ := strings.Cut(entry, ":")
		tap, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
		token = strings.TrimSpace(token)
		switch {
		case err != nil || tap < 1:
			// The entry is not echoed: it may be a token without its tap id.
			return fmt.Errorf("%s entry %d does not start with a tap id: write tapId:token, with a tap id from 1", source, n)
		case token == "":
			return fmt.Errorf("%s entry %d: tap %d has an empty token: write tapId:token", source, n, tap)
		}
		h := sha256.Sum256([]byte(token))
		if other, ok := seen[h]; ok {
			return fmt.Errorf("%s: taps %d and %d have the same token: give each tap its own", source, other, tap)
		}
		for _, t := range a.taps {
			if t.tap == tap {
				return fmt.Errorf("%s: tap %d is given twice: give each tap one token", source, tap)
			}
		}
		seen[h] = tap
		a.taps = append(a.taps, tapToken{tap: tap, hash: h})
	}
	return nil
}

// identify returns who holds token. It compares hashes in constant time
// and looks at every token, so the time it takes says nothing about them.
func (a *auth) identify(token string) (caller, bool) {
	h := sha256.Sum256([]byte(token))
	var who caller
	found := 0
	if a.hasAdmin {
		match := subtle.ConstantTimeCompare(h[:], a.admin[:])
		who.admin = match == 1
		found |= match
	}
	for _, t := range a.taps {
		match := subtle.ConstantTimeCompare(h[:], t.hash[:])
		who.tap = int64(subtle.ConstantTimeSelect(match, int(t.tap), int(who.tap)))
		found |= match
	}
	return who, found == 1
}

// caller returns who sent r: a bearer token in the Authorization header or,
// where allowQuery (browsers cannot set headers on a WebSocket), the token
// query parameter. It is a 401 when auth is on and the token is missing or
// unknown.
func (a *auth) caller(w http.ResponseWriter, r *http.Request, allowQuery bool) (caller, error) {
	if !a.on() {
		return caller{admin: true}, nil
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok && allowQuery {
		token, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair"`)
		return caller{}, errorf(http.StatusUnauthorized, "this needs a token: send Authorization: Bearer <token>%s", queryHint(allowQuery))
	}
	who, known := a.identify(token)
	if !known {
		w.Header().Set("WWW-Authenticate", `Bearer realm="altair", error="invalid_token"`)
		return caller{}, errorf(http.StatusUnauthorized, "the token is not a tap's or the admin's: check the token")
	}
	return who, nil
}

func queryHint(allowQuery bool) string {
	if allowQuery {
		return " or ?token=<token>"
	}
	return ""
}

// bearer returns the token of an "Authorization: Bearer <token>" value.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
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
