package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	const cannot = "a change without its seq or its body, or unknown: "
	tests := []struct {
		name, message string
		want          string // the error, if any
	}{
		{"a pour", `{"event":"pour","seq":42,"beer":{"id":7,"tapId":3,"volume":500,"type":"pint",` +
			`"timestamp":"2026-12-04T18:00:00.000Z","pourId":"m3-118","kegId":4}}`, ""},
		{"a delete", `{"event":"deleted","seq":43,"id":7}`, ""},
		{"a keg", `{"event":"keg","seq":44,"change":"started","keg":{"id":4,"tapId":3,"beverage":{"name":"Pils"},` +
			`"size":50000,"served":0,"remaining":50000,"startedAt":"2026-12-04T18:00:00.000Z"}}`, ""},
		{"a report", `{"event":"report","report":{"total":3,"seq":41}}`, ""},
		{"a report with its seq outside too", `{"event":"report","seq":41,"report":{"total":3,"seq":41}}`, ""},
		{"a tap", `{"event":"tap","tap":{"tapId":3,"online":true}}`, ""},
		{"a pour without a seq, from an older server", `{"event":"pour","beer":{"id":7}}`,
			cannot + `{"event":"pour","beer":{"id":7}}`},
		{"a change unknown", `{"event":"spill","seq":45}`, cannot + `{"event":"spill","seq":45}`},
		{"a pour without its beer", `{"event":"pour","seq":46}`, cannot + `{"event":"pour","seq":46}`},
		{"a keg without its keg", `{"event":"keg","seq":47,"change":"low"}`,
			cannot + `{"event":"keg","seq":47,"change":"low"}`},
		{"a report without its report", `{"event":"report"}`, cannot + `{"event":"report"}`},
		{"not JSON", `beer`, "not an event: invalid character 'b' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decode([]byte(tt.message))
			if got := errString(err); got != tt.want {
				t.Errorf("error %q; want %q", got, tt.want)
			}
		})
	}
	e, _ := decode([]byte(tests[0].message))
	if p := e.Beer; p.ID != 7 || p.TapID != 3 || p.Volume != 500 || *p.PourID != "m3-118" || *p.KegID != 4 ||
		!p.Timestamp.Equal(time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("pour %+v; want the message's", *p)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestInboxTake(t *testing.T) {
	t.Parallel()
	in := &inbox{ready: make(chan struct{}, 1)}
	for seq := range int64(5) {
		in.events = append(in.events, deleteEvent(seq+1, seq))
	}
	in.err = errors.New("read: closed")
	for _, want := range []string{"1 2 3", "4 5", "read: closed", "read: closed"} {
		batch, err := in.take(context.Background(), 3)
		got := errString(err)
		for i, e := range batch {
			if i > 0 {
				got += " "
			}
			got += string(rune('0' + e.Seq))
		}
		if got != want {
			t.Errorf("took %q; want %q", got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := (&inbox{ready: make(chan struct{}, 1)}).take(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("take from an empty inbox: %v; want the context's deadline", err)
	}
}

// FuzzDecode checks that no message makes decode panic, and that a change it lets through has what applying needs.
func FuzzDecode(f *testing.F) {
	f.Add(`{"event":"pour","seq":42,"beer":{"id":7,"tapId":3,"volume":500,"type":"pint",` +
		`"timestamp":"2026-12-04T18:00:00Z"}}`)
	f.Add(`{"event":"deleted","seq":43,"id":7}`)
	f.Add(`{"event":"keg","seq":44,"change":"low","keg":{"id":4,"beverage":{"name":"Pils"}}}`)
	f.Add(`{"event":"report","report":{"seq":41}}`)
	f.Add(`{"event":"tap","tap":{"tapId":3}}`)
	f.Fuzz(func(t *testing.T, message string) {
		e, err := decode([]byte(message))
		if err != nil {
			return
		}
		if e.Seq > 0 && (e.Event == "pour" && e.Beer == nil || e.Event == "keg" && e.Keg == nil) ||
			e.Seq > 0 && e.Event != "pour" && e.Event != "deleted" && e.Event != "keg" ||
			e.Event == "report" && e.Report == nil {
			t.Errorf("decode let %q through as %+v", message, e)
		}
	})
}
