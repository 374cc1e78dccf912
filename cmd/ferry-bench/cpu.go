package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTicks = 100

// cpuGroups are the processes whose CPU time a run accounts for.
var cpuGroups = []string{"ferry", "bench", "postgres", "minio"}

// cpuSnap is the CPU time (user+system, seconds) each process of interest
// has used so far: ferry (one pid), this process (the raw clients, the
// naive pipeline, the target), the Postgres backends serving the
// benchmark's database, and MinIO (shared with whatever else uses it).
type cpuSnap map[int]procCPU

type procCPU struct {
	group string
	secs  float64
}

// cpuSpent is the CPU time, in seconds, each group used over an interval.
type cpuSpent map[string]float64

// postgresBackends returns the pids of the backends connected to the
// benchmark's database.
func postgresBackends(ctx context.Context, pool *pgxpool.Pool) map[int]bool {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return nil
	}
	pids, _ := pgx.CollectRows(rows, pgx.RowTo[int32])
	out := make(map[int]bool, len(pids))
	for _, p := range pids {
		out[int(p)] = true
	}
	return out
}

func cpuSnapshot(ctx context.Context, pool *pgxpool.Pool, ferryPid int) cpuSnap {
	backends := postgresBackends(ctx, pool)
	s := cpuSnap{}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		open, closing := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || closing < open {
			continue
		}
		var group string
		switch {
		case pid == ferryPid:
			group = "ferry"
		case pid == self:
			group = "bench"
		case backends[pid]:
			group = "postgres"
		case st[open+1:closing] == "minio":
			group = "minio"
		default:
			continue
		}
		f := strings.Fields(st[closing+1:])
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		s[pid] = procCPU{group: group, secs: (utime + stime) / clockTicks}
	}
	return s
}

// sub returns the CPU time each group spent between before and s; a process
// that ended in between is not counted.
func (s cpuSnap) sub(before cpuSnap) cpuSpent {
	d := cpuSpent{}
	for pid, p := range s {
		d[p.group] += p.secs - before[pid].secs
	}
	return d
}

// cpuTable renders CPU milliseconds per unit of work for named runs.
func cpuTable(title, per string, names []string, runs map[string]cpuSpent, units map[string]float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (CPU ms per %s, summed over the repetitions; postgres: the backends\nserving the benchmark's database; minio: shared with anything else using it):\n\n", title, per)
	b.WriteString("| run | " + strings.Join(cpuGroups, " | ") + " | total |\n|---|")
	b.WriteString(strings.Repeat("---|", len(cpuGroups)+1) + "\n")
	for _, n := range names {
		c, u := runs[n], units[n]
		if u == 0 {
			continue
		}
		total := 0.0
		fmt.Fprintf(&b, "| %s |", n)
		for _, g := range cpuGroups {
			total += c[g]
			fmt.Fprintf(&b, " %s |", num(c[g]*1000/u))
		}
		fmt.Fprintf(&b, " %s |\n", num(total*1000/u))
	}
	return b.String()
}
