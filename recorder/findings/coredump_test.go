package findings

import (
	"testing"

	"github.com/preflight-rec/preflight/recorder/capture"
)

func TestCoreDump(t *testing.T) {
	i6, i11 := 6, 11
	dumped := func(status *int, mod func(i int, s *capture.Sample)) Incident {
		in := incident(3, mod)
		in.Systemd = &capture.Systemd{Unit: "drop.service", Result: "core-dump", ExecMainCode: "dumped", ExecMainStatus: status}
		return in
	}
	runRule(t, CoreDump, []ruleCase{
		{"SIGSEGV, the main process gone", dumped(&i11, func(i int, s *capture.Sample) {
			if i == 3 {
				s.Service.Processes = s.Service.Processes[1:]
			}
		}), []string{"dumped core, killed by SIGSEGV (signal 11)", "Result=core-dump ExecMainCode=dumped ExecMainStatus=11",
			"PID 100 (drop) is gone at 0s", "coredumpctl info 100"}},
		{"SIGABRT, all gone", dumped(&i6, func(i int, s *capture.Sample) {
			if i == 3 {
				s.Service.Processes = nil
			}
		}), []string{"SIGABRT (signal 6)", "coredumpctl info -1 COREDUMP_UNIT=drop.service"}},
		{"no status", dumped(nil, nil), []string{"killed by a signal", "ExecMainStatus=?"}},
		{"killed, no core", func() Incident {
			in := dumped(&i11, nil)
			in.Systemd.ExecMainCode = "killed"
			return in
		}(), nil},
		{"no systemd", incident(3, nil), nil},
	})
}
