package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestScanRecordReadsWhatTheServerWrites checks that every record the
// server writes takes replay's fast path and reads back as it was.
func TestScanRecordReadsWhatTheServerWrites(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 21, 4, 5, 123e6, time.UTC).UnixMilli()
	beers := []*beer{
		{id: 1, tap: 1, volume: 100, at: at},
		{id: 922337203685477580, tap: 922337203685477580, volume: 1000, at: at, pourID: "tap3-000187"},
		{id: 7, tap: 3, volume: 330.123456789, at: at + 1, pourID: "a.b:c_d-e"},
	}
	for _, b := range beers {
		for _, op := range []string{"pour", "deleted"} {
			line := appendPourRecord(nil, op, b)
			var rec record
			if !scanRecord(line, &rec) {
				t.Fatalf("scanRecord(%s) = false; want the fast path", line)
			}
			got, err := rec.beer()
			if err != nil || rec.Op != op || *got != *b {
				t.Errorf("scanRecord(%s) = %s %+v, %v; want %s %+v", line, rec.Op, got, err, op, b)
			}
		}
	}
	for _, line := range [][]byte{appendDeleteRecord(nil, 42), appendLastIDRecord(nil, 42)} {
		var rec record
		if !scanRecord(line, &rec) || rec.ID != 42 {
			t.Errorf("scanRecord(%s) = %+v; want id 42 on the fast path", line, rec)
		}
	}
}

// FuzzScanRecord checks that whatever the fast path accepts, encoding/json
// reads the same way.
func FuzzScanRecord(f *testing.F) {
	f.Add([]byte(`{"op":"pour","beer":{"id":1,"tapId":2,"volume":137.5,"type":"half","timestamp":"2026-11-28T09:37:03.717Z","pourId":"x-2"}}` + "\n"))
	f.Add([]byte(`{"op":"deleted","beer":{"id":9,"tapId":2,"volume":900,"type":"stein","timestamp":"2026-11-28T09:37:03.717Z"}}`))
	f.Add([]byte(`{"op":"delete","id":7}` + "\n"))
	f.Add([]byte(`{"op":"lastId","id":12}`))
	f.Add([]byte(`{"op":"pour","beer":{"id":1,"tapId":2,"volume":1e2,"type":"pint","timestamp":"2026-13-28T09:37:03.717Z"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast record
		if !scanRecord(line, &fast) {
			return
		}
		var slow record
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("scanRecord accepted %q, which encoding/json refuses: %v", line, err)
		}
		if fmt.Sprint(fast.Op, fast.ID, beerOrNil(fast.Beer)) != fmt.Sprint(slow.Op, slow.ID, beerOrNil(slow.Beer)) {
			t.Fatalf("scanRecord(%q) = %+v %+v; encoding/json reads %+v %+v", line, fast, fast.Beer, slow, slow.Beer)
		}
	})
}

func beerOrNil(b *beerRecord) any {
	if b == nil {
		return nil
	}
	return *b
}
