package cgroup

// MemoryStat is the cgroup's memory by kind, in bytes, from memory.stat: a
// nil field is one this kernel does not report.
type MemoryStat struct {
	Anon   *uint64 // v2 anon; v1 total_rss
	File   *uint64 // page cache: v2 file; v1 total_cache
	Kernel *uint64 // v2 kernel (Linux 5.18+); v1 memory.kmem.usage_in_bytes
	Shmem  *uint64 // v2 shmem; v1 total_shmem
	Sock   *uint64 // v2 sock; v1 memory.kmem.tcp.usage_in_bytes
}

// memoryStat reads the breakdown from the v2 directory, else the v1 memory
// one; nil when neither has memory.stat. From v1's it also sets *swap
// when nil (swap, with swap accounting), so that the file, which the
// kernel sums over the whole subtree, is read once.
func (sr *statReader) memoryStat(v2, mem string, swap **uint64) *MemoryStat {
	if b := sr.file(v2, "memory.stat"); b != nil {
		k := func(key string) *uint64 { return sr.key(v2, "memory.stat", b, key) }
		return &MemoryStat{Anon: k("anon"), File: k("file"), Kernel: k("kernel"), Shmem: k("shmem"), Sock: k("sock")}
	}
	b := sr.file(mem, "memory.stat")
	if b == nil {
		return nil
	}
	k := func(key string) *uint64 { return sr.key(mem, "memory.stat", b, key) }
	m := &MemoryStat{Anon: k("total_rss"), File: k("total_cache"), Shmem: k("total_shmem")}
	if *swap == nil {
		*swap = k("swap")
	}
	// The buffer is reused by the next reads: memory.stat's values are taken.
	m.Kernel = sr.uint(mem, "memory.kmem.usage_in_bytes", 1)
	m.Sock = sr.uint(mem, "memory.kmem.tcp.usage_in_bytes", 1)
	return m
}
