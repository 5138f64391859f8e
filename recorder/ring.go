package recorder

// ring keeps the newest n values, oldest first on read. Not safe for
// concurrent use; the recorder's loop owns it.
type ring[T any] struct {
	buf  []T
	next int  // where the next value goes
	full bool // buf has wrapped at least once
}

func newRing[T any](n int) *ring[T] {
	return &ring[T]{buf: make([]T, n)}
}

func (r *ring[T]) push(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next = 0
		r.full = true
	}
}

func (r *ring[T]) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}

// snapshot returns a copy of the values, oldest first.
func (r *ring[T]) snapshot() []T {
	out := make([]T, 0, r.len())
	if r.full {
		out = append(out, r.buf[r.next:]...)
	}
	return append(out, r.buf[:r.next]...)
}

// newest returns the newest value, false when the ring is empty.
func (r *ring[T]) newest() (T, bool) {
	if r.len() == 0 {
		var zero T
		return zero, false
	}
	return r.buf[(r.next+len(r.buf)-1)%len(r.buf)], true
}
