package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schema is every table and view the relay writes, created when missing, under a lock so that relays starting
// together do not race. Volumes, sizes and percents are float8, as the venue sends them. altair_kegs.level is the
// venue's level of a keg (what it had less what it served): remaining follows from it and the keg's pours.
const schema = `select pg_advisory_xact_lock(hashtext('altair_relay_schema'));
create table if not exists altair_venues (venue text primary key, url text not null, seq bigint not null default 0,
	synced_at timestamptz);
create table if not exists altair_pours (venue text, id bigint, tap_id integer not null, volume float8 not null,
	glass text not null, poured_at timestamptz not null, pour_id text, keg_id bigint, deleted_at timestamptz,
	primary key (venue, id));
create index if not exists altair_pours_keg on altair_pours (venue, keg_id) where keg_id is not null;
create table if not exists altair_kegs (venue text, id bigint, tap_id integer not null, beverage text not null,
	brewery text, style text, abv float8, size float8 not null, remaining float8 not null, level float8 not null,
	low_at float8, started_at timestamptz not null, ended_at timestamptz, primary key (venue, id));
create or replace view altair_daily as select venue, (poured_at at time zone 'UTC')::date as day, tap_id, glass,
	count(*) as pours, sum(volume) / 1000 as litres from altair_pours where deleted_at is null group by 1, 2, 3, 4;`

// An event is a message of a venue's socket: a change (pour, deleted or keg) with its seq, a report, or a tap's.
type event struct {
	Event, Change string               // Change is a keg's: started, updated, ended, low or empty
	Seq, ID       int64                // ID is a deleted pour's
	Beer          *pour                // a pour's
	Keg           *keg                 // a keg's
	Report        *struct{ Seq int64 } // a report's: of it, the relay reads only the last change it counts
}

// A pour is a stored pour as the venue serves it; JSON names match the fields but for case.
type pour struct {
	ID        int64
	TapID     int
	Volume    float64 // ml
	Type      string  // the glass: half, pint or stein
	Timestamp time.Time
	PourID    *string // the tap's own id for it, if any
	KegID     *int64  // the keg it came from, if any
}

// A keg is a keg as the venue serves it, of which the relay keeps what tells how much is left.
type keg struct {
	ID       int64
	TapID    int
	Beverage struct {
		Name           string
		Brewery, Style *string
		ABV            *float64
	}
	Size, Served, Remaining float64  // ml; remaining is the venue's level less served, or 0
	LowAt                   *float64 // the percent left at which it is low
	StartedAt               time.Time
	EndedAt                 *time.Time
}

// errGap is a change that does not follow the last one applied: the venue no longer holds what came between.
var errGap = errors.New("a gap in the venue's changes")

type db struct{ pool *pgxpool.Pool } // the relay's PostgreSQL

// setup creates what is missing of the schema, in one implicit transaction, and lists the venues.
func (d *db) setup(ctx context.Context, venues []venueConfig) error {
	if _, err := d.pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create the schema: %w", err)
	}
	b := &pgx.Batch{}
	for _, v := range venues {
		b.Queue(`insert into altair_venues (venue, url) values ($1, $2) on conflict (venue) do update set url = $2`,
			v.name, v.url)
	}
	return d.pool.SendBatch(ctx, b).Close()
}

// cursor is the last change of a venue applied, and whether the relay has ever read the venue.
func (d *db) cursor(ctx context.Context, venue string) (seq int64, synced bool, err error) {
	err = d.pool.QueryRow(ctx, `select seq, synced_at is not null from altair_venues where venue = $1`, venue).
		Scan(&seq, &synced)
	return seq, synced, err
}

// apply writes a venue's changes and its new seq in one transaction, and answers how many it applied and the seq
// now stored. A change at or below the stored seq is skipped, so one read again after a reconnect is applied once;
// one that does not follow the change before is errGap. On an error, nothing is applied.
func (d *db) apply(ctx context.Context, venue string, changes []event) (applied int, seq int64, err error) {
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `select seq from altair_venues where venue = $1 for update`, venue)
		if err := row.Scan(&seq); err != nil {
			return fmt.Errorf("read the seq: %w", err)
		}
		var fresh []event
		for _, e := range changes {
			if e.Seq > seq+1 {
				return fmt.Errorf("%w: change %d after %d", errGap, e.Seq, seq)
			} else if e.Seq == seq+1 {
				seq, fresh = e.Seq, append(fresh, e)
			}
		}
		if applied = len(fresh); applied > 0 {
			return tx.SendBatch(ctx, changeBatch(venue, fresh, seq)).Close()
		}
		return nil
	})
	return applied, seq, err
}

// changeBatch writes changes that follow each other, up to seq. A pour's id is never used again and a pour is
// stored before it is deleted, so all the pours go in first, then the deletes; a pour already there stays as it is.
func changeBatch(venue string, changes []event, seq int64) *pgx.Batch {
	pours := []pour{} // not nil, which would be JSON null
	var deleted, touched, kegs []int64
	b := &pgx.Batch{}
	b.Queue(`update altair_venues set seq = $2, synced_at = now() where venue = $1`, venue, seq)
	for _, e := range changes {
		switch e.Event {
		case "pour":
			pours, touched = append(pours, *e.Beer), append(touched, e.Beer.ID)
		case "deleted":
			deleted, touched = append(deleted, e.ID), append(touched, e.ID)
		case "keg":
			queueKeg(b, venue, *e.Keg, e.Change == "started")
			kegs = append(kegs, e.Keg.ID)
		}
	}
	rows, _ := json.Marshal(pours)
	b.Queue(`insert into altair_pours (venue, id, tap_id, volume, glass, poured_at, pour_id, keg_id) select $1, p.*
		from jsonb_to_recordset($2) as p("ID" bigint, "TapID" int, "Volume" float8, "Type" text,
			"Timestamp" timestamptz, "PourID" text, "KegID" bigint)
		on conflict (venue, id) do nothing`, venue, rows)
	b.Queue(`update altair_pours set deleted_at = now() where venue = $1 and id = any($2) and deleted_at is null`,
		venue, deleted)
	queueSettle(b, venue, kegs, touched)
	return b
}

// queueKeg upserts a keg. Its level is remaining + served while some is left, or when it starts; at 0 left, the venue
// drew more than its level (which stays) or weighed it empty (the level is what it served): the least of the two.
func queueKeg(b *pgx.Batch, venue string, k keg, started bool) {
	exact, level := started || k.Remaining > 0, k.Served
	if exact {
		level += k.Remaining
	}
	b.Queue(`insert into altair_kegs as k (venue, id, tap_id, beverage, brewery, style, abv, size, remaining, level,
			low_at, started_at, ended_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		on conflict (venue, id) do update set tap_id = $3, beverage = $4, brewery = $5, style = $6, abv = $7, size = $8,
			remaining = $9, low_at = $11, started_at = $12, ended_at = $13,
			level = case when $14 then $10 else least(k.level, $10) end`,
		venue, k.ID, k.TapID, k.Beverage.Name, k.Beverage.Brewery, k.Beverage.Style, k.Beverage.ABV, k.Size,
		k.Remaining, level, k.LowAt, k.StartedAt, k.EndedAt, exact)
}

// queueSettle works out what is left in the kegs given and in those of the pours given, from their level and pours:
// as the venue does, never below 0 nor above the keg's size.
func queueSettle(b *pgx.Batch, venue string, kegs, pours []int64) {
	b.Queue(`update altair_kegs k set remaining = least(k.size, greatest(0, k.level - coalesce((select sum(p.volume)
			from altair_pours p where p.venue = k.venue and p.keg_id = k.id and p.deleted_at is null), 0)))
		where k.venue = $1 and (k.id = any($2) or k.id in (select keg_id from altair_pours where venue = $1
			and id = any($3)))`,
		venue, kegs, pours)
}

// replace makes a venue's rows what the venue holds at seq, in one transaction: its pours and kegs are inserted or
// updated, the venue's pours not among them are marked deleted, and seq is stored. It answers how many pours it read.
func (d *db) replace(ctx context.Context, venue string, seq int64, pours pgx.CopyFromSource, kegs []keg) (n int64,
	err error) {
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `create temp table altair_held (id text, "tapId" text, volume text, type text,
			timestamp text, "pourId" text, "kegId" text) on commit drop`)
		if err != nil {
			return err
		}
		if n, err = tx.CopyFrom(ctx, pgx.Identifier{"altair_held"}, csvColumns, pours); err != nil {
			return fmt.Errorf("read the pours: %w", err)
		}
		b, ids := &pgx.Batch{}, []int64{}
		b.Queue(`update altair_venues set seq = $2, synced_at = now() where venue = $1`, venue, seq)
		b.Queue(`insert into altair_pours (venue, id, tap_id, volume, glass, poured_at, pour_id, keg_id)
			select distinct on (id::bigint) $1, id::bigint, "tapId"::int, volume::float8, type, timestamp::timestamptz,
				nullif("pourId", ''), nullif("kegId", '')::bigint from altair_held order by id::bigint
			on conflict (venue, id) do update set tap_id = excluded.tap_id, volume = excluded.volume,
				glass = excluded.glass, poured_at = excluded.poured_at, pour_id = excluded.pour_id,
				keg_id = excluded.keg_id, deleted_at = null`,
			venue)
		b.Queue(`update altair_pours p set deleted_at = now() where venue = $1 and deleted_at is null
			and not exists (select from altair_held h where h.id::bigint = p.id)`, venue)
		for _, k := range kegs {
			queueKeg(b, venue, k, false)
			ids = append(ids, k.ID)
		}
		queueSettle(b, venue, ids, nil)
		return tx.SendBatch(ctx, b).Close()
	})
	return n, err
}
