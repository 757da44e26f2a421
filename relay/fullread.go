package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// kegPage is how many kegs the relay asks for at a time.
const kegPage = 1000

// fullRead makes the venue's rows what the venue holds at seq, the seq of
// the report that opened the subscription. The venue keeps pouring while
// its pours and kegs are read, so what is read may be newer than seq; the
// changes after seq, buffered in the inbox meanwhile, are applied next and
// leave a pour already there as it is, so the rows converge on the venue's.
func (v *venue) fullRead(ctx context.Context, seq int64) error {
	start := time.Now()
	kegs, err := v.kegs(ctx)
	if err != nil {
		return err
	}
	body, err := v.get(ctx, "/api/beers.csv")
	if err != nil {
		return err
	}
	defer body.Close()
	pours, err := v.db.replace(ctx, v.name, seq, csvPours(v.name, body), kegs)
	if err != nil {
		return fmt.Errorf("full read: %w", err)
	}
	v.seq.Store(seq)
	v.log.Info("full read", "seq", seq, "pours", pours, "kegs", len(kegs), "duration", time.Since(start))
	return nil
}

// kegs is every keg of the venue, oldest first: kegs are never deleted, so
// paging through them misses none.
func (v *venue) kegs(ctx context.Context) ([]keg, error) {
	var all []keg
	for page := 1; ; page++ {
		var answer struct{ Kegs []keg }
		if err := v.getJSON(ctx, fmt.Sprintf("/api/kegs?page=%d&page_size=%d", page, kegPage), &answer); err != nil {
			return nil, err
		}
		if all = append(all, answer.Kegs...); len(answer.Kegs) < kegPage {
			return all, nil
		}
	}
}

// get asks the venue for path and answers the body of a 200.
func (v *venue) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header = v.header()
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var answer struct{ Message string }
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&answer)
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, answer.Message)
	}
	return resp.Body, nil
}

func (v *venue) getJSON(ctx context.Context, path string, answer any) error {
	body, err := v.get(ctx, path)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(answer); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// csvPours reads the venue's CSV of pours, as rows of pourColumns. The
// columns are found by the header's names; pourId and kegId may be absent.
func csvPours(venue string, r io.Reader) pgx.CopyFromSource {
	in := csv.NewReader(r)
	var col map[string]int
	return pgx.CopyFromFunc(func() ([]any, error) {
		rec, err := in.Read()
		if err == nil && col == nil {
			col = map[string]int{}
			for i, name := range rec {
				col[name] = i
			}
			rec, err = in.Read()
		}
		switch {
		case err == io.EOF && col != nil:
			return nil, nil
		case err == io.EOF:
			return nil, errors.New("the CSV of pours is empty, without even its header")
		case err != nil:
			return nil, err
		}
		p, err := parsePour(rec, col)
		if line, _ := in.FieldPos(0); err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		return pourRow(venue, p), nil
	})
}

// parsePour reads a pour from a CSV record.
func parsePour(rec []string, col map[string]int) (pour, error) {
	cell := func(name string) string {
		if i, ok := col[name]; ok {
			return rec[i]
		}
		return ""
	}
	id, err1 := strconv.ParseInt(cell("id"), 10, 64)
	tap, err2 := strconv.Atoi(cell("tapId"))
	volume, err3 := strconv.ParseFloat(cell("volume"), 64)
	at, err4 := time.Parse(time.RFC3339Nano, cell("timestamp"))
	p := pour{ID: id, TapID: tap, Volume: volume, Type: cell("type"), Timestamp: at}
	if p.Type == "" {
		err1 = cmp.Or(err1, errors.New("no type"))
	}
	if s := cell("pourId"); s != "" {
		p.PourID = &s
	}
	if s := cell("kegId"); s != "" {
		kegID, err := strconv.ParseInt(s, 10, 64)
		p.KegID, err2 = &kegID, cmp.Or(err2, err)
	}
	return p, errors.Join(err1, err2, err3, err4)
}
