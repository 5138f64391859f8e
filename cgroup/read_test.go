package cgroup

import (
	"bytes"
	"fmt"
	"testing"
)

// seqRead fills b from content at off as the kernel's seq_file does for a
// file of lines: whole lines while each still ends before its page does
// (seq_printf keeps a line only if count+len < PAGE_SIZE) and b is not
// full, then as much as b holds.
func seqRead(content, b []byte, off int) int {
	const page = 4096
	count, i := 0, off
	for i < len(content) && count < len(b) {
		l := bytes.IndexByte(content[i:], '\n') + 1
		if count > 0 && count+l >= page {
			break
		}
		count, i = count+l, i+l
	}
	return copy(b, content[off:off+count])
}

// A list of PIDs whose first read stops where the next line would not fit
// the kernel's page (4,088 bytes of 8-byte lines) is read on to EOF; a
// short one is one read.
func TestReadPIDLines(t *testing.T) {
	was := preadWrapped
	t.Cleanup(func() { preadWrapped = was })
	for _, lines := range []int{3, 511, 512, 600} {
		var content []byte
		for i := range lines {
			content = fmt.Appendf(content, "%d\n", 4000000+i)
		}
		reads := 0
		preadWrapped = func(fd int, b []byte, off int64) (int, error) {
			reads++
			return seqRead(content, b, int(off)), nil
		}
		var r reader
		got, err := r.readAt0(-1, "x/cgroup.procs", maxProcsSize, endOf("x/cgroup.procs", false), false)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%d lines (%d bytes): read %d bytes, %v; want all of them", lines, len(content), len(got), err)
		}
		if lines == 3 && reads != 1 {
			t.Errorf("3 lines: %d reads, want 1", reads)
		}
	}
}
