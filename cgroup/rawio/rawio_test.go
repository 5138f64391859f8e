package rawio

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Pread reads a pseudo-file from any offset, again and again, and reports
// a bad descriptor as pread(2) does.
func TestPread(t *testing.T) {
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc here")
	}
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, 4096)
	n, err := Pread(fd, buf, 0)
	if err != nil || n == 0 || n == len(buf) {
		t.Fatalf("first read: %d bytes, %v", n, err)
	}
	want := n
	if n, err = Pread(fd, buf, 0); err != nil || n < want-10 || n > want+10 {
		t.Errorf("second read from 0: %d bytes, %v; first %d", n, err, want)
	}
	if n, err = Pread(fd, buf, int64(n)); err != nil || n != 0 {
		t.Errorf("read at EOF: %d bytes, %v, want 0", n, err)
	}
	if n, err = Pread(fd, nil, 0); err != nil || n != 0 {
		t.Errorf("empty buffer: %d bytes, %v", n, err)
	}
	if _, err := Pread(-1, buf, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("bad descriptor: %v, want EBADF", err)
	}
}
