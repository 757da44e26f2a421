package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"
)

// measureReads times o.read requests of every kind of read, one at a time,
// and o.read deletes of random stored pours.
func measureReads(ctx context.Context, o options) (result, error) {
	res := result{Mode: "read", Reads: map[string]*spread{}}
	h, err := dialHTTP(o.addr, o.token)
	if err != nil {
		return res, err
	}
	defer h.close()
	total, lastID, first, last, err := extent(h)
	if err != nil {
		return res, err
	}
	span := last.Sub(first)
	between := "&from=" + url.QueryEscape(first.Add(span/4).Format(time.RFC3339Nano)) + // the middle half
		"&to=" + url.QueryEscape(first.Add(3*span/4).Format(time.RFC3339Nano))
	if total == 0 {
		return res, fmt.Errorf("the server holds no pours: seed it first (-seed)")
	}
	pages := func(size, matching int) []int { // the first, middle and last page
		last := max(1, (matching+size-1)/size)
		return []int{1, (last + 1) / 2, last}
	}
	kinds := map[string]func(i int) string{
		"GET /api/beers/{id}": func(int) string { return fmt.Sprintf("/api/beers/%d", 1+rand.Int64N(lastID)) },
	}
	for _, q := range []struct {
		name, filter string
		size         int
	}{
		{"list", "", 50},
		{"list 1000 a page", "", 1000},
		{"list type=pint", "&type=pint", 50},
		{"list tapId=3", "&tapId=3", 50},
		{"list tapId=3&type=stein", "&tapId=3&type=stein", 50},
		{"list from&to", between, 50},
		{"list tapId=3&from&to", "&tapId=3" + between, 50},
	} {
		matching, err := count(h, q.filter)
		if err != nil {
			return res, err
		}
		q.filter += fmt.Sprintf("&page_size=%d", q.size)
		for k, page := range pages(q.size, matching) {
			name := fmt.Sprintf("%s, %s page", q.name, []string{"first", "middle", "last"}[k])
			kinds[name] = func(int) string { return fmt.Sprintf("/api/beers?page=%d%s", page, q.filter) }
		}
	}
	for name, path := range kinds {
		var lat []time.Duration
		for i := range o.read {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			t := time.Now()
			status, _, err := h.do("GET", path(i), nil)
			if err != nil || status != 200 && status != 404 {
				return res, fmt.Errorf("GET %s: %d %v", path(i), status, err)
			}
			lat = append(lat, time.Since(t))
		}
		res.Reads[name] = spreadOf(lat)
	}
	res.Reads["DELETE /api/beers/{id}"], err = measureDeletes(h, o.read, lastID)
	res.Server = serverStats(o.addr)
	return res, err
}

// count returns how many pours match filter.
func count(h *httpConn, filter string) (int, error) {
	var l struct{ Total int }
	status, body, err := h.do("GET", "/api/beers?page_size=1"+filter, nil)
	if err == nil && status != 200 {
		err = fmt.Errorf("GET /api/beers?page_size=1%s: %d", filter, status)
	}
	if err == nil {
		err = json.Unmarshal(body, &l)
	}
	return l.Total, err
}

// extent returns how many pours the server holds, the highest id, and when
// the first and the last were poured.
func extent(h *httpConn) (total int, lastID int64, first, last time.Time, err error) {
	var l struct {
		Total int
		Beers []struct {
			ID        int64
			Timestamp time.Time
		}
	}
	status, body, err := h.do("GET", "/api/beers?page_size=1", nil)
	if err == nil && status == 200 {
		err = json.Unmarshal(body, &l)
	}
	if err != nil || l.Total == 0 {
		return 0, 0, first, last, err
	}
	first = l.Beers[0].Timestamp
	status, body, err = h.do("GET", fmt.Sprintf("/api/beers?page_size=1&page=%d", l.Total), nil)
	if err == nil && status == 200 {
		err = json.Unmarshal(body, &l)
	}
	if err != nil || len(l.Beers) == 0 {
		return 0, 0, first, last, fmt.Errorf("reading the last pour: %d %v", status, err)
	}
	return l.Total, l.Beers[0].ID, first, l.Beers[0].Timestamp, nil
}

// measureDeletes deletes n random stored pours and times each.
func measureDeletes(h *httpConn, n int, lastID int64) (*spread, error) {
	var lat []time.Duration
	for tries := 0; len(lat) < n && tries < 20*n; tries++ {
		path := fmt.Sprintf("/api/beers/%d", 1+rand.Int64N(lastID))
		t := time.Now()
		status, _, err := h.do("DELETE", path, nil)
		d := time.Since(t)
		switch {
		case err != nil:
			return nil, err
		case status == 204:
			lat = append(lat, d)
		case status != 404:
			return nil, fmt.Errorf("DELETE %s: %d", path, status)
		}
	}
	return spreadOf(lat), nil
}
