package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"mime"
	"net/http"
	"path"
	"time"
)

// web is the dashboard, one page with its script and style, served from the binary: it loads nothing from elsewhere.
//
//go:embed web
var web embed.FS

// serveAsset answers the embedded file web/name.
func serveAsset(name string) http.HandlerFunc {
	body, _ := web.ReadFile("web/" + name) // the embed holds every asset a route names
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	ctype := mime.TypeByExtension(path.Ext(name))
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the page's URL may hold a token: it must not leak in a Referer
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; "+
			"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		r.Header.Del("Range") // the files are small: each answer is the whole file, never a 416
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	}
}
