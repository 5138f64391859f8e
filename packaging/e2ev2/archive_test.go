package e2ev2

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDebianArchive: the archive comes from apt's own sources, deb822
// first, for the guest's suite and main only.
func TestDebianArchive(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"deb822", map[string]string{
			"sources.list.d/debian.sources": `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`,
		}, "http://mirror.example/debian"},
		{"deb822 skips disabled, source-only and other suites", map[string]string{
			"sources.list.d/a.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n" +
				"Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\n" +
				"Types: deb\nURIs: http://old.example/debian\nSuites: bullseye\nComponents: main\n\n" +
				"Types: deb deb-src\nURIs: http://on.example/debian\nSuites: bookworm\nComponents: main contrib\n",
		}, "http://on.example/debian"},
		{"one-line", map[string]string{
			"sources.list": "# deb http://commented.example/debian bookworm main\n" +
				"deb-src http://src.example/debian bookworm main\n" +
				"deb [arch=amd64 signed-by=/k.gpg] http://line.example/debian bookworm main contrib\n",
		}, "http://line.example/debian"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etc := t.TempDir()
			for name, data := range tc.files {
				p := filepath.Join(etc, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := debianArchive(etc)
			if err != nil || got != tc.want {
				t.Errorf("debianArchive = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, err := debianArchive(t.TempDir()); err == nil {
		t.Errorf("debianArchive of an empty /etc/apt = %q, want an error", got)
	}
}
