package logs

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// BenchmarkSelect: picking the service's lines out of a full kernel ring
// (2,400 lines, as this machine's holds, a few of them about the service).
func BenchmarkSelect(b *testing.B) {
	var lines []capture.KernelLine
	for i := range 2400 {
		text := "usb 1-1: new high-speed USB device number " + strconv.Itoa(i) + " using xhci_hcd"
		if i%600 == 0 {
			text = oomKillLine
		}
		lines = append(lines, capture.KernelLine{Text: text})
	}
	b.ReportAllocs()
	for b.Loop() {
		Select(lines, &Filter{PIDs: map[int]bool{1234: true}, Cgroups: []string{"/system.slice/dead-drop.service"}})
	}
}

// BenchmarkReadKmsg: one reading of this machine's /dev/kmsg (needs root).
func BenchmarkReadKmsg(b *testing.B) {
	if f, err := os.Open("/dev/kmsg"); err != nil {
		b.Skipf("/dev/kmsg: %v", err)
	} else {
		f.Close()
	}
	since := time.Now().Add(-2 * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadKmsg("/dev/kmsg", since, &Filter{Cgroups: []string{"/system.slice/dead-drop.service"}}); err != nil {
			b.Fatal(err)
		}
	}
}
