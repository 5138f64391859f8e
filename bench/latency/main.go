// Command latency times, on this machine, the path from kill -9 of the last
// process in a service's cgroup to preflight's capture being renamed into
// place and fsynced: one recorder watching a hand-made cgroup (cgroup2, and
// v1 memory on a hybrid host) that holds one `sleep`, killed -runs times,
// each run a fresh incident. It prints every run and the median and worst.
// bench/overhead runs the same measurement as part of docs/benchmarks.md.
//
//	make build && go run ./bench/latency -runs 50 [-procs 2000]
//
// Root only. Everything it starts it ends by PID; the cgroups and the
// scratch directory it makes it removes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/preflight-rec/preflight/bench/internal/kit"
)

func main() {
	bin := flag.String("preflight", "bin/preflight", "the preflight binary")
	runs := flag.Int("runs", 50, "kill -9 → capture runs")
	procs := flag.Int("procs", 0, "extra idle processes on the host during the runs")
	work := flag.String("work", "/var/tmp", "where to make the scratch directory (a real disk: captures are fsynced)")
	interval := flag.Float64("interval", 1, "the recorder's PREFLIGHT_INTERVAL_SECONDS")
	flag.Parse()
	if err := run(*bin, *work, *runs, *procs, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(bin, work string, runs, procs int, interval float64) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("must run as root: it makes cgroups")
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	h, err := kit.FindHierarchies()
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(work, "preflight-latency-")
	if err != nil {
		return fmt.Errorf("failed to make scratch directory: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(scratch)) }()
	root, err := kit.MakeCgroup(h, "/"+filepath.Base(scratch), true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, root.Remove()) }()
	if procs > 0 {
		var cg *kit.Cgroup
		if cg, err = kit.MakeCgroup(h, root.Path+"/population", false); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, cg.Remove()) }()
		var pop *kit.Population
		if pop, err = kit.StartPopulation(procs, cg); err != nil {
			return err
		}
		defer pop.Stop()
	}
	svc, err := kit.MakeCgroup(h, root.Path+"/svc", true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, svc.Remove()) }()
	url, stop, err := kit.ServeHealth()
	if err != nil {
		return err
	}
	defer stop()

	fmt.Printf("%d processes on the host, recorder interval %gs, %d runs\n", kit.CountProcesses(), interval, runs)
	res, err := kit.Latency(kit.LatencyConfig{
		Recorder: kit.RecorderConfig{Bin: bin, Service: "latency", HealthURL: url, Interval: interval, Dir: scratch, LogFile: filepath.Join(scratch, "recorder.log")},
		Svc:      svc,
		Runs:     runs,
		Settle:   250 * time.Millisecond,
		Progress: os.Stdout,
	})
	if err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		v    []time.Duration
	}{{"detected", res.Detected}, {"renamed", res.Renamed}, {"durable", res.Durable}} {
		f := kit.Durations(m.v)
		fmt.Printf("%-8s median %8s  worst %8s\n", m.name, fmtMS(kit.Median(f)), fmtMS(kit.Max(f)))
	}
	return nil
}

func fmtMS(ns float64) string {
	return strconv.FormatFloat(ns/1e6, 'f', 2, 64) + " ms"
}
