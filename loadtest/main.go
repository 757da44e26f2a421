// The load tool measures a running tap server the way its operators
// would: it opens WebSocket subscribers, sends pours at a fixed rate or as
// fast as it can, matches every pour event to the POST that caused it, and
// prints one summary. It exits non-zero when a healthy subscriber missed an
// event or got one out of order.
//
//	loadtest -subs 2000 -rate 20 -duration 20s        fan-out under a steady load
//	loadtest -posters 64 -duration 10s                POST throughput
//	loadtest -seed 1000000                            fill the server
//	loadtest -read 2000                               read and delete latencies
//	loadtest -churn 10000                             subscribe/unsubscribe cycles
//	loadtest -minimal 127.0.0.1:9000                  run the reference server
//	loadtest -plot results.jsonl > latency.svg        plot delivery latency by subscribers
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	addr     string
	token    string
	subs     int
	taps     int // of subs, how many subscribe as taps
	rate     float64
	posters  int
	duration time.Duration
	pourIDs  bool
	jsonOut  string
	label    string
	seed     int
	read     int
	churn    int
	minimal  string
	plot     string
	postOnly bool
	postHere bool // send pours from this process even with subscribers (tests)
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8338", "the server's host:port (loopback only)")
	flag.StringVar(&o.token, "token", "", "a bearer token that may pour for any tap and subscribe (the admin's)")
	flag.IntVar(&o.subs, "subs", 0, "WebSocket subscribers to open")
	flag.IntVar(&o.taps, "taps", 0, "of the -subs subscribers, this many subscribe as taps 1 to 20 in turn (?tapId=), which are not sent their own pours")
	flag.Float64Var(&o.rate, "rate", 0, "pours per second; 0 sends as fast as -posters can")
	flag.IntVar(&o.posters, "posters", 64, "concurrent posters (connections that send pours)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send pours")
	flag.BoolVar(&o.pourIDs, "pourids", false, "send a pourId with every pour")
	flag.StringVar(&o.jsonOut, "json", "", "also write the figures as JSON to this file (- for stdout)")
	flag.StringVar(&o.label, "label", "", "a name for this run in the JSON figures")
	flag.IntVar(&o.seed, "seed", 0, "fill the server with this many pours, then stop")
	flag.IntVar(&o.read, "read", 0, "measure reads and deletes, this many of each kind")
	flag.IntVar(&o.churn, "churn", 0, "open and close this many subscribers, then compare the server's goroutines and memory")
	flag.StringVar(&o.minimal, "minimal", "", "run the minimal reference server on this address")
	flag.StringVar(&o.plot, "plot", "", "write an SVG plot of the JSON figures in this file to stdout")
	flag.BoolVar(&o.postOnly, "post-only", false, "only send pours and write them as JSON (the tool runs itself so)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if err := checkLoopback(o.addr); err != nil && o.plot == "" {
		return err
	}
	var (
		res result
		err error
	)
	switch {
	case o.plot != "":
		return plotFile(o.plot, stdout)
	case o.minimal != "":
		return serveMinimal(ctx, o.minimal)
	case o.postOnly:
		return postOnly(ctx, o, stdout)
	case o.seed > 0:
		res, err = seed(ctx, o)
	case o.read > 0:
		res, err = measureReads(ctx, o)
	case o.churn > 0:
		res, err = churn(ctx, o)
	default:
		res, err = load(ctx, o)
	}
	if err != nil {
		return err
	}
	res.Label = o.label
	res.print(stdout)
	if err := writeJSON(o.jsonOut, res, stdout); err != nil {
		return err
	}
	if res.Failed != "" {
		return fmt.Errorf("failed: %s", res.Failed)
	}
	return nil
}

func writeJSON(path string, res result, stdout io.Writer) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	return err
}
