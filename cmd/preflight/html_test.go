package main

// The HTML page (html.go) over the frozen fixtures: golden files, nothing
// fetched, hostile strings escaped, and a rendering in headless Chromium
// that must show charts, not a blank page.
//
//	go test ./cmd/preflight -run 'HTMLGolden' -update   # rewrite the golden pages

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

var fixtureServices = []string{"oom-drop", "leaky", "ledger", "calm", "balloon", "flappy"}

// TestHTMLGolden: the pages of three fixtures, and show prints what last
// does for the same capture.
func TestHTMLGolden(t *testing.T) {
	for _, svc := range []string{"oom-drop", "leaky", "calm"} {
		t.Run(svc, func(t *testing.T) {
			r := readerRun(t, nil, "last", svc, "--html", "--dir", fixtures)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			checkGolden(t, "last-"+svc+".html", r.stdout)
			path := fixturePath(t, svc)
			for _, args := range [][]string{{"show", path, "--html"}, {"--html", "show", svc + "@1", "--dir", fixtures}} {
				s := readerRun(t, nil, args...)
				if s.code != 0 || s.stdout != r.stdout {
					t.Errorf("%v: exit %d, same page as last %v, stderr %q", args, s.code, s.stdout == r.stdout, s.stderr)
				}
			}
		})
	}
	r := readerRun(t, nil, "last", "leaky", "--html", "--json", "--dir", fixtures)
	if r.code != 2 || !strings.Contains(r.stderr, "--json and --html conflict") || r.stdout != "" {
		t.Errorf("--html --json: exit %d, stdout %d bytes, stderr %q; want exit 2 naming both", r.code, len(r.stdout), r.stderr)
	}
}

// allowedTags are the elements the page is made of.
var allowedTags = map[string]bool{
	"!DOCTYPE": true, "html": true, "head": true, "meta": true, "title": true, "style": true, "body": true,
	"header": true, "footer": true, "section": true, "h1": true, "h2": true, "p": true, "b": true, "span": true,
	"div": true, "dl": true, "dt": true, "dd": true, "ol": true, "ul": true, "li": true, "table": true,
	"thead": true, "tbody": true, "tr": true, "th": true, "td": true, "figure": true, "figcaption": true,
	"svg": true, "line": true, "text": true, "polyline": true, "circle": true,
}

// selfContained lists what in page could fetch or run something: any
// element but the page's own, any attribute that loads or runs, CSS that
// loads. Every '<' of escaped text is "&lt;", so every '<' is a tag.
func selfContained(page string) []string {
	var bad []string
	for _, tag := range regexp.MustCompile(`<[^>]*>`).FindAllString(page, -1) {
		name := strings.TrimPrefix(strings.Fields(strings.Trim(tag, "<>/"))[0], "/")
		if !allowedTags[name] || regexp.MustCompile(`(?i)\s(src|href|xlink:href|on[a-z]+|style|formaction|srcdoc)=`).MatchString(tag) {
			bad = append(bad, tag)
		}
	}
	for _, re := range []string{`(?i)url\(`, `(?i)@import`, `(?i)@font-face`} {
		if m := regexp.MustCompile(re).FindString(page); m != "" {
			bad = append(bad, m)
		}
	}
	return bad
}

// TestHTMLSelfContained: every fixture's page is one document with charts
// and nothing that fetches or runs.
func TestHTMLSelfContained(t *testing.T) {
	for _, svc := range fixtureServices {
		r := readerRun(t, nil, "last", svc, "--html", "--dir", fixtures)
		if r.code != 0 {
			t.Fatalf("last %s --html: exit %d %s", svc, r.code, r.stderr)
		}
		if bad := selfContained(r.stdout); len(bad) > 0 {
			t.Errorf("last %s --html has %q", svc, bad)
		}
		if !strings.HasPrefix(r.stdout, "<!DOCTYPE html>") || strings.Count(r.stdout, "<svg ") < 4 ||
			strings.Count(r.stdout, `<line class="mark"`) < 4 || !strings.Contains(r.stdout, "<polyline") {
			t.Errorf("last %s --html: %d charts, %d trigger marks; want at least 4 of each", svc,
				strings.Count(r.stdout, "<svg "), strings.Count(r.stdout, `<line class="mark"`))
		}
	}
}

// TestHTMLHostile: a capture is untrusted input: markup in any string of it
// is shown as text, never run, in the page, the SVG and the title.
func TestHTMLHostile(t *testing.T) {
	const evil = `</title></style><script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	t0 := fixedNow.Add(-time.Hour)
	mem, limit := uint64(10<<20), uint64(64<<20)
	proc := capture.Process{PID: 7, Name: evil, Cmdline: evil, State: evil, RSSBytes: 1 << 20}
	svc := &capture.Service{Cgroup: evil, MemoryBytes: &mem, MemoryMaxBytes: &limit, Processes: []capture.Process{proc}}
	c := &capture.Capture{
		Schema: capture.Schema, Service: evil, Host: evil, HealthURL: evil, Unit: evil,
		TransitionTime: t0, HealthError: evil, PreflightVersion: evil, IntervalSeconds: 1,
		Triggers: []capture.Trigger{{Kind: evil, At: t0, Detail: evil}},
		Health:   []capture.Check{{At: t0, Error: evil}},
		Systemd:  &capture.Systemd{Unit: evil, Result: evil, ExecMainCode: evil, ActiveState: evil, SubState: evil, ControlGroup: evil},
	}
	half := 50.0
	for i := range 3 {
		c.Samples = append(c.Samples, capture.Sample{
			At: t0.Add(time.Duration(i-2) * time.Second), CPU: capture.CPU{Percent: &half, CPUs: 2},
			Memory: capture.Memory{UsedPercent: 40},
			Disks:  []capture.Disk{{Mount: evil, UsedPercent: 50}},
			TopCPU: []capture.Process{proc}, TopMemory: []capture.Process{proc},
			Service: svc,
		})
	}
	var b bytes.Buffer
	if err := writeHTML(&b, c, evil); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if bad := selfContained(page); len(bad) > 0 {
		t.Errorf("hostile strings became markup: %q", bad)
	}
	if n := strings.Count(page, "</title>"); n != 1 {
		t.Errorf("%d </title> in the page, want 1", n)
	}
	if n := strings.Count(page, "</style>"); n != 1 {
		t.Errorf("%d </style> in the page, want 1", n)
	}
	escaped := "&lt;/title&gt;&lt;/style&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#34;&#39;&amp;"
	if n := strings.Count(page, escaped); n < 20 {
		t.Errorf("the hostile string is shown escaped %d times, want every place (20 or more)", n)
	}
}

// TestHTMLChromium renders a page in headless Chromium, at a desktop's and
// a phone's width, and checks the screenshot shows charts: enough pixels of
// the series' colours (saturated blue and orange; the text is grey), not a
// blank or text-only page.
func TestHTMLChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs Debian's chromium to render the page (apt-get install chromium): not installed")
	}
	dir := t.TempDir()
	r := readerRun(t, nil, "last", "leaky", "--html", "--dir", fixtures)
	page := filepath.Join(dir, "leaky.html")
	if err := os.WriteFile(page, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct {
		name          string
		width, height int
		minColoured   int
	}{
		{"desktop", 1000, 2400, 8000},
		{"phone", 390, 2400, 2500},
	} {
		t.Run(size.name, func(t *testing.T) {
			shot := filepath.Join(dir, size.name+".png")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
				"--disable-background-networking", "--no-first-run", "--hide-scrollbars",
				"--user-data-dir="+filepath.Join(dir, "profile-"+size.name),
				"--screenshot="+shot, "--window-size="+strconv.Itoa(size.width)+","+strconv.Itoa(size.height), "file://"+page)
			// Chromium forks helpers: its own process group, ended with it.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if cmd.Process != nil {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers it left, if any
			}
			if err != nil {
				t.Fatalf("chromium: %v\n%s", err, out)
			}
			f, err := os.Open(shot)
			if err != nil {
				t.Fatalf("no screenshot: %v\n%s", err, out)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			bounds := img.Bounds()
			coloured, inked := 0, 0
			for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
				for x := bounds.Min.X; x < bounds.Max.X; x++ {
					r, g, b, _ := img.At(x, y).RGBA()
					r, g, b = r>>8, g>>8, b>>8
					hi, lo := max(r, g, b), min(r, g, b)
					if hi-lo > 90 {
						coloured++
					}
					if lo < 200 {
						inked++
					}
				}
			}
			t.Logf("%dx%d screenshot: %d pixels of the series' colours, %d not white", bounds.Dx(), bounds.Dy(), coloured, inked)
			if bounds.Dx() != size.width {
				t.Errorf("screenshot is %d wide, want %d", bounds.Dx(), size.width)
			}
			if coloured < size.minColoured {
				t.Errorf("%d coloured pixels, want at least %d: no charts drawn", coloured, size.minColoured)
			}
			if inked < 20000 {
				t.Errorf("%d pixels not white: a blank page", inked)
			}
		})
	}
}
