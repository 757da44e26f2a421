package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// fullRead makes the venue's rows what it holds at the seq of the report that opens a subscription without a seq.
// The venue pours on while its kegs and pours are read, so what is read may be newer; the changes after the seq,
// kept in the inbox meanwhile, are applied next and leave a pour already there as it is: the rows converge.
func (v *venue) fullRead(ctx context.Context, in *inbox) error {
	first, err := in.take(ctx, 1)
	if err != nil {
		return err
	} else if first[0].Report == nil {
		return errors.New("the first message is not a report")
	}
	start, seq, kegs := time.Now(), first[0].Report.Seq, []keg{}
	for page := 1; ; page++ { // oldest first and never deleted, so paging misses none
		var answer struct {
			Kegs  []keg
			Total int
		}
		if _, err := v.get(ctx, fmt.Sprintf("/api/kegs?page=%d&page_size=%d", page, maxBatch), &answer); err != nil {
			return err
		}
		if kegs = append(kegs, answer.Kegs...); len(answer.Kegs) == 0 || len(kegs) >= answer.Total {
			break
		}
	}
	body, err := v.get(ctx, "/api/beers.csv", nil)
	if err != nil {
		return err
	}
	defer body.Close()
	pours, err := v.db.replace(ctx, v.name, seq, csvPours(body), kegs)
	if err != nil {
		return fmt.Errorf("full read: %w", err)
	}
	v.seq.Store(seq)
	v.fullNext = false
	v.log.Info("full read", "seq", seq, "pours", pours, "kegs", len(kegs), "duration", time.Since(start))
	return nil
}

// get asks the venue for path: with answer nil, it answers the body of a 200; else it decodes the JSON body into it.
func (v *venue) get(ctx context.Context, path string, answer any) (io.ReadCloser, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.url+path, nil) // the URL is checked with VENUES
	req.Header = v.header.Clone()
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

var csvColumns = []string{"id", "tapId", "volume", "type", "timestamp", "pourId", "kegId"} // those a full read reads

// csvPours reads the venue's CSV of pours as rows of text in the order of csvColumns: a column it lacks is empty,
// one it has besides is left out. PostgreSQL reads the text as numbers and times.
func csvPours(r io.Reader) pgx.CopyFromSource {
	in := csv.NewReader(r)
	var col []int // by csvColumns, its column in the CSV, counting from 1; 0 when it has none
	return pgx.CopyFromFunc(func() ([]any, error) {
		rec, err := in.Read()
		if err == nil && col == nil {
			for _, name := range csvColumns {
				col = append(col, slices.Index(rec, name)+1)
			}
			rec, err = in.Read()
		}
		if err == io.EOF && col != nil {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("the CSV of pours: %w", err)
		}
		row, cells := []any{}, append([]string{""}, rec...)
		for _, c := range col {
			row = append(row, cells[c])
		}
		return row, nil
	})
}
