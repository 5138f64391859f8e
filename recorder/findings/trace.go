package findings

import (
	"fmt"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Rules over the deeper evidence: the service's processes' file
// descriptors, memory.stat's breakdown, and the fine service trace.

// FDsAtLimit fires when a process of the service had open at least
// FDsPercent of its soft RLIMIT_NOFILE, in the sample nearest the failure
// that shows it.
func FDsAtLimit(in Incident, th Thresholds) *Finding {
	var (
		worst *capture.Process
		at    time.Time
		ratio float64
		d     time.Duration
	)
	for i := range in.Samples {
		s := &in.Samples[i]
		if s.Service == nil {
			continue
		}
		for j := range s.Service.Processes {
			p := &s.Service.Processes[j]
			if p.FDs == nil || p.FDLimit == nil || *p.FDLimit == 0 {
				continue
			}
			r := 100 * float64(*p.FDs) / float64(*p.FDLimit)
			if r < th.FDsPercent {
				continue
			}
			// The sample nearest the failure; in it, the fullest process.
			if dist := in.distance(s.At, s.At); worst == nil || dist < d || dist == d && r > ratio {
				worst, at, ratio, d = p, s.At, r, dist
			}
		}
	}
	if worst == nil {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("A service process ran out of file descriptors: %d of %d open files", *worst.FDs, *worst.FDLimit)}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %d of %d open files (soft RLIMIT_NOFILE) at %s",
		procName(*worst), *worst.FDs, *worst.FDLimit, in.rel(at)))
	f.Evidence = append(f.Evidence, "at the limit, open(), socket() and accept() fail with EMFILE (\"too many open files\")")
	return f
}

// PageCacheLimit fires when the service's memory at MemoryNearLimitPercent
// of its limit was mostly page cache: file (less shmem, which cannot be
// reclaimed) at least PageCachePercent of it, and more than anonymous
// memory. The kernel reclaims cache at the limit; an OOM kill or a stall
// there is a different fix (less cache, a higher limit, memory.high) than a
// leak.
func PageCacheLimit(in Incident, th Thresholds) *Finding {
	var hit *capture.Sample
	for i := range in.Samples {
		s := &in.Samples[i]
		svc := s.Service
		if svc == nil || svc.MemoryStat == nil || svc.MemoryBytes == nil || svc.MemoryMaxBytes == nil || *svc.MemoryMaxBytes == 0 {
			continue
		}
		used := float64(*svc.MemoryBytes)
		if 100*used/float64(*svc.MemoryMaxBytes) < th.MemoryNearLimitPercent {
			continue
		}
		cache, anon := pageCache(svc.MemoryStat), val(svc.MemoryStat.AnonBytes)
		if 100*float64(cache) >= th.PageCachePercent*used && cache > anon {
			if hit == nil || in.distance(s.At, s.At) <= in.distance(hit.At, hit.At) {
				hit = s
			}
		}
	}
	if hit == nil {
		return nil
	}
	svc, m := hit.Service, hit.Service.MemoryStat
	cache := pageCache(m)
	f := &Finding{Summary: fmt.Sprintf("The memory at the service's limit was page cache (%s), not anonymous memory (%s)",
		Bytes(cache), Bytes(val(m.AnonBytes)))}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s at %s", memoryOf(svc), in.rel(hit.At)))
	f.Evidence = append(f.Evidence, fmt.Sprintf("memory.stat: file %s (shmem %s), anon %s, kernel %s, sock %s",
		optBytes(m.FileBytes), optBytes(m.ShmemBytes), optBytes(m.AnonBytes), optBytes(m.KernelBytes), optBytes(m.SockBytes)))
	f.Evidence = append(f.Evidence, "page cache is reclaimable: files read or written fill it, not a leak")
	return f
}

// pageCache is file memory less shmem (tmpfs, shared memory), which is
// counted as file but cannot be dropped.
func pageCache(m *capture.MemoryStat) uint64 { return sub(val(m.FileBytes), val(m.ShmemBytes)) }

func val(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func optBytes(p *uint64) string {
	if p == nil {
		return "-"
	}
	return Bytes(*p)
}

// tracePoints returns the trace points before the failure, read on the
// trace's interval (not a trigger's), with the service's memory.
func (in Incident) tracePoints() []capture.TracePoint {
	var out []capture.TracePoint
	for _, p := range in.Trace {
		if p.At.Before(in.Failure) && p.Trigger == "" {
			out = append(out, p)
		}
	}
	return out
}

// PressureStall fires when the fine trace shows the service's cgroup
// stalled on memory in the last StallSeconds before the failure: memory
// pressure some avg10 at or above MemoryPressurePercent.
func PressureStall(in Incident, th Thresholds) *Finding {
	var peak *capture.TracePoint
	window := time.Duration(th.StallSeconds * float64(time.Second))
	for _, p := range in.tracePoints() {
		if p.MemorySomeAvg10 == nil || in.Failure.Sub(p.At) > window {
			continue
		}
		if peak == nil || *p.MemorySomeAvg10 > *peak.MemorySomeAvg10 {
			peak = &p
		}
	}
	if peak == nil || *peak.MemorySomeAvg10 < th.MemoryPressurePercent {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("The service stalled on memory in its last %s: pressure some %s (avg10)",
		Duration(window), pct(*peak.MemorySomeAvg10))}
	line := fmt.Sprintf("memory pressure some %s", pct(*peak.MemorySomeAvg10))
	if peak.MemoryFullAvg10 != nil {
		line += ", full " + pct(*peak.MemoryFullAvg10)
	}
	f.Evidence = append(f.Evidence, line+" (avg10) at "+in.rel(peak.At)+" (service trace)")
	return f
}

// TraceGrowth fires when the fine trace shows the service's memory rising
// in its last readings before the failure: at least TraceGrowthPoints
// readings in a row that never fall (from the first that rose), growing by
// TraceGrowthMinBytes. It
// names the rate and, with a limit, the time the limit was away.
func TraceGrowth(in Incident, th Thresholds) *Finding {
	ps := in.tracePoints()
	end := len(ps) - 1
	for end >= 0 && ps[end].MemoryBytes == nil {
		end--
	}
	if end < 1 {
		return nil
	}
	start := end
	for start > 0 && ps[start-1].MemoryBytes != nil && *ps[start-1].MemoryBytes <= *ps[start].MemoryBytes {
		start--
	}
	for start < end && *ps[start+1].MemoryBytes == *ps[start].MemoryBytes {
		start++ // flat before the climb: not part of it
	}
	a, b := ps[start], ps[end]
	grew := *b.MemoryBytes - *a.MemoryBytes
	dt := b.At.Sub(a.At).Seconds()
	if end-start+1 < th.TraceGrowthPoints || grew < th.TraceGrowthMinBytes || dt <= 0 {
		return nil
	}
	rate := float64(grew) / dt
	f := &Finding{Summary: fmt.Sprintf("The service's memory grew %s/s in its last %s (service trace)",
		Bytes(uint64(rate)), Duration(b.At.Sub(a.At)))}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s at %s → %s at %s, %d readings in a row",
		Bytes(*a.MemoryBytes), in.rel(a.At), Bytes(*b.MemoryBytes), in.rel(b.At), end-start+1))
	if limit := in.memoryLimit(); limit > 0 {
		if *b.MemoryBytes >= limit {
			f.Evidence = append(f.Evidence, fmt.Sprintf("at its limit %s at %s", Bytes(limit), in.rel(b.At)))
		} else {
			eta := time.Duration(float64(limit-*b.MemoryBytes) / rate * float64(time.Second))
			f.Evidence = append(f.Evidence, fmt.Sprintf("at that rate the limit %s was %s away at %s",
				Bytes(limit), Duration(eta), in.rel(b.At)))
		}
	}
	return f
}

// memoryLimit is the service's memory limit in the samples nearest the
// failure; 0 when none has one.
func (in Incident) memoryLimit() uint64 {
	for i := len(in.Samples) - 1; i >= 0; i-- {
		if s := in.Samples[i].Service; s != nil && s.MemoryMaxBytes != nil {
			return *s.MemoryMaxBytes
		}
	}
	return 0
}
