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

// fullRead makes the venue's rows what the venue holds at seq, the seq of the report that opens a subscription
// without one. The venue keeps pouring while its kegs and pours are read, so what is read may be newer than seq;
// the changes after seq, kept in the inbox meanwhile, are applied next and leave a pour already there as it is, so
// the rows converge on the venue's.
func (v *venue) fullRead(ctx context.Context, in *inbox) error {
	first, err := in.take(ctx, 1)
	if err == nil && first[0].Report == nil {
		err = errors.New("the first message is not a report")
	}
	if err != nil {
		return err
	}
	start, seq, kegs := time.Now(), first[0].Report.Seq, []keg{}
	for page := 1; ; page++ { // oldest first and never deleted, so paging misses none
		var answer struct{ Kegs []keg }
		if _, err := v.get(ctx, fmt.Sprintf("/api/kegs?page=%d&page_size=%d", page, maxBatch), &answer); err != nil {
			return err
		}
		if kegs = append(kegs, answer.Kegs...); len(answer.Kegs) < maxBatch {
			break
		}
	}
	body, err := v.get(ctx, "/api/beers.csv", nil)
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

// get asks the venue for path: with answer nil, it answers the body of a 200; else it decodes the JSON body into it.
func (v *venue) get(ctx context.Context, path string, answer any) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header = v.header()
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	} else if resp.StatusCode == http.StatusOK && answer == nil {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var failed struct{ Message string }
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&failed)
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, failed.Message)
	}
	if err := json.NewDecoder(resp.Body).Decode(answer); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return nil, nil
}

// csvPours reads the venue's CSV of pours as rows of pourColumns. Columns are found by the header's names;
// pourId and kegId may be absent.
func csvPours(venue string, r io.Reader) pgx.CopyFromSource {
	in := csv.NewReader(r)
	var col map[string]int
	return pgx.CopyFromFunc(func() ([]any, error) {
		rec, err := in.Read()
		if err == nil && col == nil {
			col = map[string]int{}
			for i, name := range rec {
				col[name] = i + 1
			}
			rec, err = in.Read()
		}
		if err == io.EOF && col != nil {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("the CSV of pours: %w", err)
		}
		cells := append([]string{""}, rec...) // col[name] is 0 for a column that is absent
		cell := func(name string) string { return cells[col[name]] }
		id, err1 := strconv.ParseInt(cell("id"), 10, 64)
		tap, err2 := strconv.Atoi(cell("tapId"))
		volume, err3 := strconv.ParseFloat(cell("volume"), 64)
		at, err4 := time.Parse(time.RFC3339Nano, cell("timestamp"))
		p := pour{ID: id, TapID: tap, Volume: volume, Type: cell("type"), Timestamp: at}
		if s := cell("pourId"); s != "" {
			p.PourID = &s
		}
		if s := cell("kegId"); s != "" {
			kegID, err := strconv.ParseInt(s, 10, 64)
			p.KegID, err1 = &kegID, cmp.Or(err1, err)
		}
		if err := errors.Join(err1, err2, err3, err4); err != nil || p.Type == "" {
			line, _ := in.FieldPos(0)
			return nil, fmt.Errorf("the CSV of pours, line %d: a pour without its id, tapId, volume, type or timestamp: %v",
				line, err)
		}
		return pourRow(venue, p), nil
	})
}
