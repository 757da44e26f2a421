package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// openAPI is the parts of web/openapi.json that the tests read.
type openAPI struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Responses map[string]struct {
			Content map[string]struct {
				Examples map[string]struct {
					Value   any `json:"value"`
					Request struct {
						Path string `json:"path"`
						Body string `json:"body"`
					} `json:"x-request"`
				} `json:"examples"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
}

func readOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile("web/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := json.Unmarshal(b, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("web/openapi.json is not an OpenAPI 3.1 document: %v", err)
	}
	return doc
}

// Every route of the server is in the document, and every operation of
// the document is a route.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	doc := readOpenAPI(t)
	log := slog.New(slog.DiscardHandler)
	s := newStore(time.Now, 0)
	h := newHub(s, 0, time.Second, log, time.Now)
	j, _ := openJournal(memoryOnly, s, h.publish, log, time.Now)
	defer j.close()
	cfg, _ := loadConfig(func(string) string { return "" })
	var served, documented []string
	for _, r := range routes(cfg, s, j, h, requestCounts{}) {
		served = append(served, strings.Replace(r.pattern, "{$}", "", 1))
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("the server's routes\n%q\nthe document's operations\n%q", served, documented)
	}
	ts := startServer(t)
	if r := do(t, "GET", ts.url+"/api/openapi.json", ""); r.status != 200 || !json.Valid(r.body) || !bytes.Contains(r.body, []byte(`"openapi": "3.1.0"`)) {
		t.Errorf("GET /api/openapi.json = %d %.100s; want the document", r.status, r.body)
	}
}

// Every example answer of the document is what the server answers to the
// example's request, after keg 1 of Pilsner Urquell (50 l) is put on tap 3
// and two pours without a keg: tap 1's 500 ml and tap 2's 250 ml with pourId
// tap2-000001. Times differ, so they are only checked to be times.
func TestOpenAPIExamplesAreTheServersAnswers(t *testing.T) {
	t.Parallel()
	doc := readOpenAPI(t)
	checked := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for code, resp := range op.Responses {
				for ctype, content := range resp.Content {
					for name, example := range content.Examples {
						t.Run(fmt.Sprintf("%s %s %s %s", method, path, code, name), func(t *testing.T) {
							t.Parallel()
							ts := startServer(t)
							if r := do(t, "POST", ts.url+"/api/kegs", examplesKeg); r.status != 201 {
								t.Fatalf("POST /api/kegs %s = %d %s; want 201", examplesKeg, r.status, r.body)
							}
							ts.pour(t, 1, 500)
							do(t, "POST", ts.url+"/api/beers", sentPour{2, 250, "tap2-000001"}.body())
							r := do(t, strings.ToUpper(method), ts.url+example.Request.Path, example.Request.Body)
							if want, _ := strconv.Atoi(code); r.status != want {
								t.Fatalf("status %d %s; want %d", r.status, r.body, want)
							}
							got, want := decodeAs(t, ctype, r.body), example.Value
							if s, ok := want.(string); ok {
								want = decodeAs(t, ctype, []byte(s))
							}
							sameFields(t, "", want, got)
						})
						checked++
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("%d examples; want every answer the README shows", checked)
	}
}

// examplesKeg is the keg the examples put on tap 3 first.
const examplesKeg = `{"tapId":3,"beverage":{"name":"Pilsner Urquell","brewery":"Plzeňský Prazdroj",` +
	`"style":"Czech pilsner","abv":4.4},"size":50000}`

// decodeAs decodes a body of a content type: JSON as it is, CSV as rows.
func decodeAs(t *testing.T, ctype string, body []byte) any {
	t.Helper()
	if ctype == "text/csv" {
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("CSV %q: %v", body, err)
		}
		var out []any
		for _, row := range rows {
			cells := make([]any, len(row))
			for k, cell := range row {
				cells[k] = cell
			}
			if len(out) > 0 && len(row) > 4 {
				cells[4] = map[string]any{"timestamp": row[4]} // a time, so checked as one
			}
			out = append(out, cells)
		}
		return out
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil || dec.Decode(new(any)) != io.EOF {
		t.Fatalf("%s is not one JSON value: %v", body, err)
	}
	return v
}

// sameFields fails unless got has exactly want's fields with want's values;
// the times of timestamp, since, lastPour, startedAt, endedAt and runsOutAt
// need only be times.
func sameFields(t *testing.T, at string, want, got any) {
	t.Helper()
	timeFields := []string{"timestamp", "since", "lastPour", "startedAt", "endedAt", "runsOutAt"}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || !slices.Equal(slices.Sorted(maps.Keys(w)), slices.Sorted(maps.Keys(g))) {
			t.Fatalf("%s: %v; want the fields of %v", at, got, want)
		}
		for k := range w {
			if s, isString := g[k].(string); isString && slices.Contains(timeFields, k) {
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					t.Fatalf("%s.%s = %q; want a time", at, k, s)
				}
				continue
			}
			sameFields(t, at+"."+k, w[k], g[k])
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Fatalf("%s: %v; want %v", at, got, want)
		}
		for i := range w {
			sameFields(t, fmt.Sprintf("%s[%d]", at, i), w[i], g[i])
		}
	default:
		if want != got {
			t.Fatalf("%s: %v; want %v", at, got, want)
		}
	}
}
